//! Opening and reading accounts, their balances and their history.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ledger::{AccountCode, LedgerError, NewAccount, SNAPSHOT_ACCOUNTS_MAX};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::views::{
    flags_from, AccountFlagDto, AccountKindDto, AccountList, AccountView, BalanceAtView,
    BalanceResponse, BalanceSnapshot, BalanceView, PostingList, PostingView, SnapshotEntry,
};
use crate::amount::CurrencyInput;
use crate::auth::AdminCaller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::pagination::page_limit;
use crate::time::parse_rfc3339;
use crate::AppState;

/// What a client sends to open an account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccountRequest {
    /// A unique code of letters, digits and `_ . : -`, at most 128 characters.
    #[schema(example = "liability:member:usr_1:money")]
    pub code: String,
    /// The account's kind.
    pub kind: AccountKindDto,
    /// The ISO 4217 currency the account holds.
    #[schema(value_type = String, example = "KRW")]
    pub currency: CurrencyInput,
    /// Flags to set.
    #[serde(default)]
    pub flags: Vec<AccountFlagDto>,
    /// Any JSON object of at most 4096 bytes.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

/// Filtering and paging accounts.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AccountListQuery {
    /// Only the account with this code (a list of zero or one).
    pub code: Option<String>,
    /// The `next_cursor` of the previous page.
    pub after: Option<String>,
    /// Page size, 1 to 500 (default 100).
    pub limit: Option<i64>,
}

/// Asking for a past balance.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BalanceQuery {
    /// An RFC 3339 instant; the answer is then the posted balance at that instant.
    pub at: Option<String>,
}

/// Paging through history.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 100).
    pub limit: Option<i64>,
}

/// Opens an account. Opening the same code again with the same definition returns the existing
/// account with 200; a different definition is refused with 409.
#[utoipa::path(
    post,
    path = "/v1/ledger/accounts",
    tag = "ledger",
    security(("bearer" = [])),
    request_body = CreateAccountRequest,
    responses(
        (status = 201, description = "Opened", body = AccountView),
        (status = 200, description = "Already open with the same definition", body = AccountView),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 409, description = "The code exists with a different definition", body = ErrorBody),
        (status = 422, description = "Invalid code, currency or metadata", body = ErrorBody),
    )
)]
pub(crate) async fn create_account(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ApiJson(request): ApiJson<CreateAccountRequest>,
) -> Result<Response, ApiError> {
    let new = NewAccount {
        code: AccountCode::parse(&request.code)?,
        kind: request.kind.into(),
        currency: request.currency.parse("currency")?,
        flags: flags_from(&request.flags),
        metadata: request.metadata,
    };
    // Only decides 200 versus 201; two concurrent first opens may both say 201, which is
    // harmless because both get the same stored account.
    let existed = match state.ledger.account_by_code(&new.code).await {
        Ok(_) => true,
        Err(LedgerError::AccountNotFound(_)) => false,
        Err(error) => return Err(error.into()),
    };
    let account = AccountView::try_from(state.ledger.create_account(new).await?)?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(account)).into_response())
}

/// Lists accounts in id order, or finds one by code.
#[utoipa::path(
    get,
    path = "/v1/ledger/accounts",
    tag = "ledger",
    security(("bearer" = [])),
    params(AccountListQuery),
    responses(
        (status = 200, description = "A page of accounts", body = AccountList),
        (status = 400, description = "Malformed query", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 422, description = "Malformed code", body = ErrorBody),
    )
)]
pub(crate) async fn list_accounts(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ApiQuery(query): ApiQuery<AccountListQuery>,
) -> Result<Json<AccountList>, ApiError> {
    let limit = page_limit(query.limit)?;
    if let Some(code) = query.code {
        let data = match state
            .ledger
            .account_by_code(&AccountCode::parse(&code)?)
            .await
        {
            Ok(account) => vec![AccountView::try_from(account)?],
            Err(LedgerError::AccountNotFound(_)) => Vec::new(),
            Err(error) => return Err(error.into()),
        };
        return Ok(Json(AccountList {
            data,
            next_cursor: None,
        }));
    }
    let page = state
        .ledger
        .list_accounts(query.after.as_deref(), limit)
        .await?;
    let data = page
        .items
        .into_iter()
        .map(AccountView::try_from)
        .collect::<Result<_, _>>()?;
    Ok(Json(AccountList {
        data,
        next_cursor: page.next,
    }))
}

/// Which accounts a balance snapshot covers.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SnapshotQuery {
    /// Every account whose code starts with this (exact, case-sensitive).
    #[param(example = "liability:member:")]
    pub code_prefix: String,
}

/// The balances of every account whose code starts with `code_prefix`, up to 1,000 accounts,
/// read by one statement: one consistent snapshot, in which a transaction between two of them
/// shows in both or in neither. For reconciling a set of accounts against a known total.
#[utoipa::path(
    get,
    path = "/v1/ledger/balances",
    tag = "ledger",
    security(("bearer" = [])),
    params(SnapshotQuery),
    responses(
        (status = 200, description = "The balances, in account id order", body = BalanceSnapshot),
        (status = 400, description = "No `code_prefix`", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 422, description = "A malformed prefix, or more than 1,000 matching accounts", body = ErrorBody),
    )
)]
pub(crate) async fn snapshot_balances(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ApiQuery(query): ApiQuery<SnapshotQuery>,
) -> Result<Json<BalanceSnapshot>, ApiError> {
    let Some(accounts) = state
        .ledger
        .snapshot_by_code_prefix(&query.code_prefix)
        .await?
    else {
        return Err(ApiError::FieldInvalid(format!(
            "code_prefix: more than {SNAPSHOT_ACCOUNTS_MAX} accounts match; use a longer prefix"
        )));
    };
    let data = accounts
        .into_iter()
        .map(|account| {
            let balance = account.balance()?;
            Ok(SnapshotEntry {
                code: account.code.as_str().to_owned(),
                balance: BalanceView::new(&account.id.to_string(), balance),
            })
        })
        .collect::<Result<_, LedgerError>>()?;
    Ok(Json(BalanceSnapshot { data }))
}

/// Reads one account.
#[utoipa::path(
    get,
    path = "/v1/ledger/accounts/{id}",
    tag = "ledger",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The account's id")),
    responses(
        (status = 200, description = "The account", body = AccountView),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 404, description = "No such account", body = ErrorBody),
    )
)]
pub(crate) async fn get_account(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AccountView>, ApiError> {
    Ok(Json(AccountView::try_from(
        state.ledger.account(&id).await?,
    )?))
}

/// Reads an account's balance now, or its posted balance at a past instant.
#[utoipa::path(
    get,
    path = "/v1/ledger/accounts/{id}/balance",
    tag = "ledger",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The account's id"), BalanceQuery),
    responses(
        (status = 200, description = "The balance now (posted, held, incoming, available), or at `at` (posted)", body = BalanceResponse),
        (status = 400, description = "`at` is not RFC 3339", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 404, description = "No such account", body = ErrorBody),
    )
)]
pub(crate) async fn get_balance(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<BalanceQuery>,
) -> Result<Json<BalanceResponse>, ApiError> {
    let Some(at) = query.at else {
        let balance = state.ledger.balance(&id).await?;
        return Ok(Json(BalanceResponse::Now(BalanceView::new(&id, balance))));
    };
    let at =
        parse_rfc3339(&at).map_err(|error| ApiError::InvalidRequest(format!("at: {error}")))?;
    let posted = state.ledger.balance_at(&id, at).await?;
    Ok(Json(BalanceResponse::At(BalanceAtView::new(
        &id, at, posted,
    ))))
}

/// Lists an account's postings, newest first, each with the balance right after it.
#[utoipa::path(
    get,
    path = "/v1/ledger/accounts/{id}/history",
    tag = "ledger",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The account's id"), HistoryQuery),
    responses(
        (status = 200, description = "A page of postings", body = PostingList),
        (status = 400, description = "Malformed cursor or limit", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 404, description = "No such account", body = ErrorBody),
    )
)]
pub(crate) async fn get_history(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<Json<PostingList>, ApiError> {
    let limit = page_limit(query.limit)?;
    let before = query
        .cursor
        .as_deref()
        .map(parse_history_cursor)
        .transpose()?;
    let page = state.ledger.history(&id, before, limit).await?;
    let data = page.items.into_iter().map(PostingView::from).collect();
    Ok(Json(PostingList {
        data,
        next_cursor: page.next,
    }))
}

/// History cursors are the account sequence number of the last posting of the previous page.
fn parse_history_cursor(cursor: &str) -> Result<i64, ApiError> {
    cursor
        .parse::<i64>()
        .ok()
        .filter(|seq| *seq >= 1)
        .ok_or_else(|| ApiError::InvalidRequest("cursor is not a cursor this API returned".into()))
}
