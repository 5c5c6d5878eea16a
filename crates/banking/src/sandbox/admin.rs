//! The sandbox's admin API (`/admin/…`): what a bank's customers and staff do outside the
//! open-banking API. Open an account, pay cash in, read a balance and the latest statement lines
//! (as a member reads their bank app, e.g. for a micro-deposit's code), see the master account,
//! and change the fault rules. Field names follow the open-banking API's; amounts are digit
//! strings of won. Errors are `{"error": {"code", "message"}}`.

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::faults::FaultRule;
use super::store::{AccountRow, EntryRow, OpenAccountError};
use super::Sandbox;
use crate::account::{AccountNumber, BankAccount, BankCode, HolderName};
use crate::error::InvalidValue;
use crate::gateway::EntryDirection;
use crate::kst;
use crate::transfer::{Memo, TransferAmount};
use crate::wire;

/// Statement lines listed by default, and at most.
const TRANSACTIONS_LIMIT_DEFAULT: usize = 100;
const TRANSACTIONS_LIMIT_MAX: usize = 500;

type Shared = State<Arc<Sandbox>>;

/// Everything the admin API refuses with.
#[derive(Debug)]
pub(super) enum AdminError {
    Unauthenticated,
    Invalid(String),
    AccountNotFound,
    AccountExists,
    Internal(String),
}

impl From<InvalidValue> for AdminError {
    fn from(error: InvalidValue) -> Self {
        AdminError::Invalid(error.to_string())
    }
}

impl From<sqlx::Error> for AdminError {
    fn from(error: sqlx::Error) -> Self {
        AdminError::Internal(error.to_string())
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            AdminError::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "the admin token is required (Authorization: Bearer <token>)".to_owned(),
            ),
            AdminError::Invalid(message) => (StatusCode::BAD_REQUEST, "invalid_request", message),
            AdminError::AccountNotFound => (
                StatusCode::NOT_FOUND,
                "account_not_found",
                "no such account".to_owned(),
            ),
            AdminError::AccountExists => (
                StatusCode::CONFLICT,
                "account_exists",
                "the account exists with another holder or balance".to_owned(),
            ),
            AdminError::Internal(detail) => {
                tracing::error!(detail, "sandbox admin request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "an internal error occurred".to_owned(),
                )
            }
        };
        (
            status,
            Json(json!({"error": {"code": code, "message": message}})),
        )
            .into_response()
    }
}

/// Refuses admin requests without the configured token; with no token configured, the admin
/// API is open (the sandbox is meant for loopback and test networks).
pub(super) async fn authorize(State(state): Shared, request: Request, next: Next) -> Response {
    if let Some(token) = &state.admin_token {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        if !presented.is_some_and(|p| token.matches(p)) {
            return AdminError::Unauthenticated.into_response();
        }
    }
    next.run(request).await
}

#[derive(Debug, Serialize)]
pub(super) struct AccountView {
    bank_code_std: String,
    account_num: String,
    account_holder_name: String,
    balance_amt: String,
    master: bool,
}

impl From<AccountRow> for AccountView {
    fn from(row: AccountRow) -> Self {
        AccountView {
            bank_code_std: row.bank_code,
            account_num: row.account_num,
            account_holder_name: row.holder_name,
            balance_amt: row.balance.to_string(),
            master: row.is_master,
        }
    }
}

#[derive(Debug, Serialize)]
pub(super) struct EntryView {
    /// `yyyyMMddHHmmssSSS` KST.
    tran_dtm: String,
    tran_date: String,
    inout_type: &'static str,
    tran_type: String,
    print_content: String,
    tran_amt: String,
    after_balance_amt: String,
    bank_tran_id: Option<String>,
}

impl From<EntryRow> for EntryView {
    fn from(row: EntryRow) -> Self {
        let at = kst::from_micros(row.tran_at);
        EntryView {
            tran_dtm: kst::format_dtm(at),
            tran_date: kst::format_date(kst::bank_date(at)),
            inout_type: match row.direction {
                EntryDirection::Deposit => wire::INOUT_DEPOSIT,
                EntryDirection::Withdrawal => wire::INOUT_WITHDRAWAL,
            },
            tran_type: row.tran_type,
            print_content: row.print_content,
            tran_amt: row.amount.to_string(),
            after_balance_amt: row.balance_after.to_string(),
            bank_tran_id: row.bank_tran_id,
        }
    }
}

fn body<T>(json: Result<Json<T>, JsonRejection>) -> Result<T, AdminError> {
    json.map(|Json(value)| value)
        .map_err(|rejection| AdminError::Invalid(rejection.body_text()))
}

fn path_account(bank_code: &str, account_num: &str) -> Result<BankAccount, AdminError> {
    Ok(BankAccount::new(
        BankCode::parse(bank_code)?,
        AccountNumber::parse(account_num)?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OpenAccount {
    bank_code_std: String,
    account_num: String,
    account_holder_name: String,
    /// The opening balance in won; `0` when absent.
    #[serde(default)]
    balance_amt: Option<String>,
}

/// `POST /admin/accounts`: 201 with the new account; 200 when it exists exactly so already.
pub(super) async fn open_account(
    State(state): Shared,
    json: Result<Json<OpenAccount>, JsonRejection>,
) -> Result<Response, AdminError> {
    let request = body(json)?;
    let account = path_account(&request.bank_code_std, &request.account_num)?;
    let holder = HolderName::parse(&request.account_holder_name)?;
    let balance = match request.balance_amt.as_deref() {
        None | Some("0") => 0,
        Some(amount) => TransferAmount::parse(amount)?.won(),
    };
    match state.store.open_account(&account, &holder, balance).await {
        Ok((row, created)) => {
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok((status, Json(AccountView::from(row))).into_response())
        }
        Err(OpenAccountError::Exists) => Err(AdminError::AccountExists),
        Err(OpenAccountError::Storage(error)) => Err(error.into()),
    }
}

/// `GET /admin/accounts/{bank_code}/{account_num}`.
pub(super) async fn account(
    State(state): Shared,
    Path((bank_code, account_num)): Path<(String, String)>,
) -> Result<Json<AccountView>, AdminError> {
    let account = path_account(&bank_code, &account_num)?;
    let row = state
        .store
        .account(&account)
        .await?
        .ok_or(AdminError::AccountNotFound)?;
    Ok(Json(row.into()))
}

/// `GET /admin/master`.
pub(super) async fn master(State(state): Shared) -> Result<Json<AccountView>, AdminError> {
    Ok(Json(state.store.master().await?.into()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TransactionsQuery {
    limit: Option<usize>,
}

/// `GET /admin/accounts/{bank_code}/{account_num}/transactions?limit=N`: the latest lines,
/// newest first.
pub(super) async fn transactions(
    State(state): Shared,
    Path((bank_code, account_num)): Path<(String, String)>,
    query: Result<Query<TransactionsQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, AdminError> {
    let Query(query) = query.map_err(|rejection| AdminError::Invalid(rejection.body_text()))?;
    let limit = query.limit.unwrap_or(TRANSACTIONS_LIMIT_DEFAULT);
    if !(1..=TRANSACTIONS_LIMIT_MAX).contains(&limit) {
        return Err(AdminError::Invalid(
            "limit must be between 1 and 500".into(),
        ));
    }
    let account = path_account(&bank_code, &account_num)?;
    let row = state
        .store
        .account(&account)
        .await?
        .ok_or(AdminError::AccountNotFound)?;
    let entries = state.store.recent_entries(&account, limit).await?;
    let entries: Vec<EntryView> = entries.into_iter().map(EntryView::from).collect();
    Ok(Json(json!({
        "balance_amt": row.balance.to_string(),
        "res_list": entries,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CashDeposit {
    tran_amt: String,
    print_content: String,
}

/// `POST /admin/accounts/{bank_code}/{account_num}/deposits`: cash paid in at the counter.
pub(super) async fn deposit(
    State(state): Shared,
    Path((bank_code, account_num)): Path<(String, String)>,
    json: Result<Json<CashDeposit>, JsonRejection>,
) -> Result<Response, AdminError> {
    let request = body(json)?;
    let account = path_account(&bank_code, &account_num)?;
    let amount = TransferAmount::parse(&request.tran_amt)?;
    let memo = Memo::parse(&request.print_content)?;
    let entry = state
        .store
        .deposit_cash(&account, amount.won(), memo.as_str())
        .await?
        .ok_or(AdminError::AccountNotFound)?;
    Ok((StatusCode::CREATED, Json(EntryView::from(entry))).into_response())
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FaultList {
    faults: Vec<FaultRule>,
}

/// `GET /admin/faults`: the rules in force, with the calls they have left.
pub(super) async fn list_faults(State(state): Shared) -> Json<FaultList> {
    Json(FaultList {
        faults: state.faults.list(),
    })
}

/// `PUT /admin/faults`: replaces every rule.
pub(super) async fn replace_faults(
    State(state): Shared,
    json: Result<Json<FaultList>, JsonRejection>,
) -> Result<Json<FaultList>, AdminError> {
    let list = body(json)?;
    state
        .faults
        .replace(list.faults)
        .map_err(|error| AdminError::Invalid(error.to_string()))?;
    Ok(list_faults(State(state)).await)
}

/// `POST /admin/faults`: adds rules after those in force.
pub(super) async fn append_faults(
    State(state): Shared,
    json: Result<Json<FaultList>, JsonRejection>,
) -> Result<Json<FaultList>, AdminError> {
    let list = body(json)?;
    state
        .faults
        .append(list.faults)
        .map_err(|error| AdminError::Invalid(error.to_string()))?;
    Ok(list_faults(State(state)).await)
}

/// `DELETE /admin/faults`: removes every rule.
pub(super) async fn clear_faults(State(state): Shared) -> Json<FaultList> {
    state
        .faults
        .replace(Vec::new())
        .expect("no rules are always valid");
    list_faults(State(state)).await
}
