//! The sandbox's open-banking shaped API (`/v2.0/…`).
//!
//! Each handler parses its request strictly (a malformed one is answered `A0001` with HTTP 400
//! and never reaches a fault rule or the database), takes the fault for its operation, and then
//! does the work in a task of its own: a bank finishes what it accepted whether or not the
//! client is still waiting, so a client that gives up can never leave a transfer half-done, and
//! what a fault does is decided by the rule alone, never by the client's timing.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Serialize;
use time::OffsetDateTime;

use super::faults::{FaultKind, FaultOp};
use super::store::{message_for, Executed, StatementFilter, TransferCommand, TransferRecord};
use super::Sandbox;
use crate::account::{AccountNumber, BankAccount, BankCode, PayerNumber};
use crate::error::{InvalidValue, RefusalCode};
use crate::gateway::{EntryDirection, TransferKind};
use crate::kst;
use crate::tran_id::BankTranId;
use crate::transfer::{Memo, TransferAmount};
use crate::wire::{self, ReplyHeader};

/// The most transfers one deposit request, or inquiries one result request, may carry.
const BATCH_ITEMS_MAX: usize = 10;

const MESSAGE_OK: &str = "정상처리";
const MESSAGE_REFUSED: &str = "참가기관 거부";

type Shared = State<Arc<Sandbox>>;

fn header(rsp_code: &str, rsp_message: &str) -> ReplyHeader {
    ReplyHeader {
        api_tran_id: ulid::Ulid::new().to_string(),
        api_tran_dtm: kst::format_dtm(OffsetDateTime::now_utc()),
        rsp_code: rsp_code.to_owned(),
        rsp_message: rsp_message.to_owned(),
    }
}

/// The reply header and `bank_rsp_code`/`bank_rsp_message` for a result.
fn verdict(result: Result<(), RefusalCode>) -> (ReplyHeader, String, String) {
    match result {
        Ok(()) => (
            header(wire::RSP_OK, MESSAGE_OK),
            wire::BANK_RSP_OK.to_owned(),
            MESSAGE_OK.to_owned(),
        ),
        Err(code) => (
            header(wire::RSP_REFUSED, MESSAGE_REFUSED),
            wire::bank_rsp_code(code)
                .expect("the sandbox refuses only with bank codes")
                .to_owned(),
            message_for(code),
        ),
    }
}

/// `A0001` with HTTP 400: the request does not parse. The message names the field and rule,
/// never the value, since values are account numbers.
fn invalid(message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(header(wire::RSP_INVALID, &message.into())),
    )
        .into_response()
}

fn reply<T: Serialize>(body: T) -> Response {
    (StatusCode::OK, Json(body)).into_response()
}

/// What a client sees when the reply is withheld and finally given up on.
fn withheld() -> Response {
    StatusCode::GATEWAY_TIMEOUT.into_response()
}

fn internal(error: impl std::fmt::Display) -> Response {
    tracing::error!(%error, "the sandbox bank failed to process a request");
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}

/// The body as a `T`, or the message of the `A0001` reply.
fn parse_json<T: DeserializeOwned>(body: &Bytes) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|error| {
        format!(
            "the body is not a request of the expected shape (line {}, column {})",
            error.line(),
            error.column()
        )
    })
}

fn parse_dtime(value: &str) -> Result<OffsetDateTime, InvalidValue> {
    kst::parse_dtime(value).ok_or(InvalidValue::new("tran_dtime", "must be yyyyMMddHHmmss"))
}

fn parse_date(what: &'static str, value: &str) -> Result<String, InvalidValue> {
    kst::parse_date(value)
        .map(kst::format_date)
        .ok_or(InvalidValue::new(what, "must be yyyyMMdd"))
}

fn parse_account(bank_code: &str, account_num: &str) -> Result<BankAccount, InvalidValue> {
    Ok(BankAccount::new(
        BankCode::parse(bank_code)?,
        AccountNumber::parse(account_num)?,
    ))
}

fn parse_count(req_cnt: &str, items: usize) -> Result<(), InvalidValue> {
    if !(1..=BATCH_ITEMS_MAX).contains(&items) {
        return Err(InvalidValue::new("req_list", "must hold 1 to 10 items"));
    }
    if req_cnt != items.to_string() {
        return Err(InvalidValue::new(
            "req_cnt",
            "must equal the number of items",
        ));
    }
    Ok(())
}

/// Runs `work` under the fault rule for `op`. `work` gets `true` when the rule injects an
/// `error`, and must then refuse with `bank_system_error` without doing anything else.
async fn under_faults<W, Fut>(state: &Sandbox, op: FaultOp, work: W) -> Response
where
    W: FnOnce(bool) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Response, sqlx::Error>> + Send + 'static,
{
    let fault = state.faults.take(op);
    if let Some(fault) = fault {
        tracing::info!(
            op = op.as_str(),
            kind = fault.kind.as_str(),
            "injecting a fault"
        );
    }
    let (latency, hold) = fault.map_or((Duration::ZERO, Duration::ZERO), |f| (f.latency, f.hold));
    let kind = fault.map(|f| f.kind);
    if kind == Some(FaultKind::Timeout) {
        tokio::time::sleep(latency + hold).await;
        return withheld();
    }
    let inject_error = kind == Some(FaultKind::Error);
    // Detached from this request's future: if the client disconnects, hyper drops the handler,
    // but the work runs to its end (see the module documentation).
    let task = tokio::spawn(async move {
        tokio::time::sleep(latency).await;
        work(inject_error).await
    });
    let response = match task.await {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => internal(error),
        Err(panicked) => internal(panicked),
    };
    if kind == Some(FaultKind::LostReply) {
        // Executed and committed above; now the reply goes missing.
        tokio::time::sleep(hold).await;
        return withheld();
    }
    response
}

pub(super) async fn real_name(State(state): Shared, body: Bytes) -> Response {
    let request: wire::RealNameRequest = match parse_json(&body) {
        Ok(request) => request,
        Err(message) => return invalid(message),
    };
    let parsed = (|| {
        BankTranId::parse(&request.bank_tran_id)?;
        parse_dtime(&request.tran_dtime)?;
        parse_account(&request.bank_code_std, &request.account_num)
    })();
    let account = match parsed {
        Ok(account) => account,
        Err(error) => return invalid(error.to_string()),
    };
    let sandbox = state.clone();
    under_faults(&state, FaultOp::RealName, move |inject_error| async move {
        let found = if inject_error {
            Err(RefusalCode::BankSystemError)
        } else {
            sandbox
                .store
                .account(&account)
                .await?
                .ok_or(RefusalCode::AccountNotFound)
        };
        let holder = found
            .as_ref()
            .map(|row| row.holder_name.clone())
            .unwrap_or_default();
        let (header, bank_rsp_code, bank_rsp_message) = verdict(found.map(|_| ()));
        Ok(reply(wire::RealNameReply {
            header,
            bank_tran_id: request.bank_tran_id,
            bank_tran_date: kst::format_date(kst::bank_date(OffsetDateTime::now_utc())),
            bank_code_tran: account.bank_code.to_string(),
            bank_rsp_code,
            bank_rsp_message,
            bank_code_std: account.bank_code.to_string(),
            account_num_masked: account.account_number.masked(),
            account_holder_name: holder,
        }))
    })
    .await
}

fn consent_reply(
    bank_tran_id: String,
    payer: &PayerNumber,
    result: Result<(), RefusalCode>,
) -> Response {
    let (header, bank_rsp_code, bank_rsp_message) = verdict(result);
    reply(wire::ConsentReply {
        header,
        bank_tran_id,
        bank_rsp_code,
        bank_rsp_message,
        payer_num: payer.to_string(),
    })
}

pub(super) async fn register_consent(State(state): Shared, body: Bytes) -> Response {
    let request: wire::ConsentRegisterRequest = match parse_json(&body) {
        Ok(request) => request,
        Err(message) => return invalid(message),
    };
    let parsed = (|| {
        BankTranId::parse(&request.bank_tran_id)?;
        parse_dtime(&request.tran_dtime)?;
        Ok::<_, InvalidValue>((
            PayerNumber::parse(&request.payer_num)?,
            parse_account(&request.bank_code_std, &request.account_num)?,
        ))
    })();
    let (payer, account) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => return invalid(error.to_string()),
    };
    let sandbox = state.clone();
    under_faults(&state, FaultOp::Consent, move |inject_error| async move {
        let result = if inject_error {
            Err(RefusalCode::BankSystemError)
        } else {
            sandbox.store.register_consent(&payer, &account).await?
        };
        if result.is_ok() {
            tracing::info!(payer_num = %payer, account = %account.account_number.masked(), "debit consent registered");
        }
        Ok(consent_reply(request.bank_tran_id, &payer, result))
    })
    .await
}

pub(super) async fn revoke_consent(State(state): Shared, body: Bytes) -> Response {
    let request: wire::ConsentRevokeRequest = match parse_json(&body) {
        Ok(request) => request,
        Err(message) => return invalid(message),
    };
    let parsed = (|| {
        BankTranId::parse(&request.bank_tran_id)?;
        parse_dtime(&request.tran_dtime)?;
        PayerNumber::parse(&request.payer_num)
    })();
    let payer = match parsed {
        Ok(payer) => payer,
        Err(error) => return invalid(error.to_string()),
    };
    let sandbox = state.clone();
    under_faults(&state, FaultOp::Consent, move |inject_error| async move {
        let result = if inject_error {
            Err(RefusalCode::BankSystemError)
        } else {
            sandbox.store.revoke_consent(&payer).await?
        };
        Ok(consent_reply(request.bank_tran_id, &payer, result))
    })
    .await
}

/// Executes a transfer command; a key reused for another transfer is refused as a duplicate
/// (and not recorded: the key belongs to the first transfer).
async fn execute(
    sandbox: &Sandbox,
    command: &TransferCommand,
) -> Result<TransferRecord, sqlx::Error> {
    let record = match sandbox.store.execute(command).await? {
        Executed::Recorded(record) => record,
        Executed::Duplicate => TransferRecord {
            kind: command.kind,
            bank_code: command.account.bank_code.to_string(),
            account_num: command.account.account_number.expose().to_owned(),
            payer_num: command.payer_number.as_ref().map(|p| p.to_string()),
            amount: command.amount,
            bank_rsp_code: wire::bank_rsp_code(RefusalCode::DuplicateBankTranId)
                .expect("a bank code")
                .to_owned(),
            bank_rsp_message: message_for(RefusalCode::DuplicateBankTranId),
            processed_at: kst::to_micros(OffsetDateTime::now_utc()),
        },
    };
    tracing::info!(
        kind = command.kind.as_str(),
        bank_tran_id = command.bank_tran_id,
        account = %command.account.account_number.masked(),
        amount = command.amount,
        bank_rsp_code = record.bank_rsp_code,
        "sandbox transfer processed"
    );
    Ok(record)
}

/// A transfer refused before it reached the book, because it names the wrong counter account.
fn not_permitted(command: &TransferCommand) -> TransferRecord {
    TransferRecord {
        kind: command.kind,
        bank_code: command.account.bank_code.to_string(),
        account_num: command.account.account_number.expose().to_owned(),
        payer_num: command.payer_number.as_ref().map(|p| p.to_string()),
        amount: command.amount,
        bank_rsp_code: wire::bank_rsp_code(RefusalCode::NotPermitted)
            .expect("a bank code")
            .to_owned(),
        bank_rsp_message: message_for(RefusalCode::NotPermitted),
        processed_at: kst::to_micros(OffsetDateTime::now_utc()),
    }
}

fn record_header(record: &TransferRecord) -> ReplyHeader {
    if record.bank_rsp_code == wire::BANK_RSP_OK {
        header(wire::RSP_OK, MESSAGE_OK)
    } else {
        header(wire::RSP_REFUSED, MESSAGE_REFUSED)
    }
}

pub(super) async fn withdraw(State(state): Shared, body: Bytes) -> Response {
    let request: wire::WithdrawRequest = match parse_json(&body) {
        Ok(request) => request,
        Err(message) => return invalid(message),
    };
    let parsed = (|| {
        if request.cntr_account_type != wire::CNTR_ACCOUNT_TYPE_NUMBER {
            return Err(InvalidValue::new("cntr_account_type", "must be N"));
        }
        let id = BankTranId::parse(&request.bank_tran_id)?;
        let requested_at = parse_dtime(&request.tran_dtime)?;
        let counter = AccountNumber::parse(&request.cntr_account_num)?;
        Memo::parse(&request.dps_print_content)?;
        Memo::parse(&request.wd_print_content)?;
        let command = TransferCommand {
            kind: TransferKind::Collect,
            tran_date: kst::format_date(kst::bank_date(requested_at)),
            bank_tran_id: id.to_string(),
            account: parse_account(&request.bank_code_std, &request.account_num)?,
            payer_number: Some(PayerNumber::parse(&request.payer_num)?),
            amount: TransferAmount::parse(&request.tran_amt)?.won(),
            account_memo: request.wd_print_content.clone(),
            master_memo: request.dps_print_content.clone(),
            inject_error: false,
        };
        Ok((command, counter))
    })();
    let (mut command, counter) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => return invalid(error.to_string()),
    };
    let sandbox = state.clone();
    under_faults(&state, FaultOp::Collect, move |inject_error| async move {
        command.inject_error = inject_error;
        let record = if counter != sandbox.master.account_number {
            not_permitted(&command)
        } else {
            execute(&sandbox, &command).await?
        };
        let holder = sandbox
            .store
            .account(&command.account)
            .await?
            .map(|a| a.holder_name);
        Ok(reply(wire::WithdrawReply {
            header: record_header(&record),
            dps_bank_code_std: sandbox.master.bank_code.to_string(),
            dps_account_num_masked: sandbox.master.account_number.masked(),
            dps_print_content: request.dps_print_content,
            bank_tran_id: request.bank_tran_id,
            bank_tran_date: command.tran_date.clone(),
            bank_tran_dtm: kst::format_dtm(kst::from_micros(record.processed_at)),
            bank_code_tran: command.account.bank_code.to_string(),
            bank_rsp_code: record.bank_rsp_code,
            bank_rsp_message: record.bank_rsp_message,
            bank_code_std: command.account.bank_code.to_string(),
            account_num_masked: command.account.account_number.masked(),
            print_content: request.wd_print_content,
            account_holder_name: holder.unwrap_or_default(),
            tran_amt: record.amount.to_string(),
        }))
    })
    .await
}

pub(super) async fn deposit(State(state): Shared, body: Bytes) -> Response {
    let request: wire::DepositRequest = match parse_json(&body) {
        Ok(request) => request,
        Err(message) => return invalid(message),
    };
    let parsed = (|| {
        if request.cntr_account_type != wire::CNTR_ACCOUNT_TYPE_NUMBER {
            return Err(InvalidValue::new("cntr_account_type", "must be N"));
        }
        parse_count(&request.req_cnt, request.req_list.len())?;
        let requested_at = parse_dtime(&request.tran_dtime)?;
        let counter = AccountNumber::parse(&request.cntr_account_num)?;
        Memo::parse(&request.wd_print_content)?;
        let mut ids = HashSet::new();
        let mut commands = Vec::with_capacity(request.req_list.len());
        for item in &request.req_list {
            let id = BankTranId::parse(&item.bank_tran_id)?;
            if !ids.insert(id.clone()) {
                return Err(InvalidValue::new(
                    "req_list",
                    "must not repeat a bank_tran_id",
                ));
            }
            Memo::parse(&item.print_content)?;
            commands.push(TransferCommand {
                kind: TransferKind::Payout,
                tran_date: kst::format_date(kst::bank_date(requested_at)),
                bank_tran_id: id.to_string(),
                account: parse_account(&item.bank_code_std, &item.account_num)?,
                payer_number: None,
                amount: TransferAmount::parse(&item.tran_amt)?.won(),
                account_memo: item.print_content.clone(),
                master_memo: request.wd_print_content.clone(),
                inject_error: false,
            });
        }
        Ok((commands, counter))
    })();
    let (commands, counter) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => return invalid(error.to_string()),
    };
    let sandbox = state.clone();
    under_faults(&state, FaultOp::Payout, move |inject_error| async move {
        let mut results = Vec::with_capacity(commands.len());
        let mut all_executed = true;
        // Each transfer of the batch stands alone: its own transaction, its own result.
        for (mut command, item) in commands.into_iter().zip(request.req_list) {
            command.inject_error = inject_error;
            let record = if counter != sandbox.master.account_number {
                not_permitted(&command)
            } else {
                execute(&sandbox, &command).await?
            };
            all_executed &= record.bank_rsp_code == wire::BANK_RSP_OK;
            let holder = sandbox
                .store
                .account(&command.account)
                .await?
                .map(|a| a.holder_name);
            results.push(wire::DepositResult {
                tran_no: item.tran_no,
                bank_tran_id: item.bank_tran_id,
                bank_tran_date: command.tran_date.clone(),
                bank_tran_dtm: kst::format_dtm(kst::from_micros(record.processed_at)),
                bank_code_tran: command.account.bank_code.to_string(),
                bank_rsp_code: record.bank_rsp_code,
                bank_rsp_message: record.bank_rsp_message,
                bank_code_std: command.account.bank_code.to_string(),
                account_num_masked: command.account.account_number.masked(),
                print_content: item.print_content,
                account_holder_name: holder.unwrap_or_default(),
                tran_amt: record.amount.to_string(),
            });
        }
        let header = if all_executed {
            header(wire::RSP_OK, MESSAGE_OK)
        } else {
            header(wire::RSP_REFUSED, MESSAGE_REFUSED)
        };
        Ok(reply(wire::DepositReply {
            header,
            wd_bank_code_std: sandbox.master.bank_code.to_string(),
            wd_account_num_masked: sandbox.master.account_number.masked(),
            wd_print_content: request.wd_print_content,
            res_cnt: results.len().to_string(),
            res_list: results,
        }))
    })
    .await
}

pub(super) async fn transfer_result(State(state): Shared, body: Bytes) -> Response {
    let request: wire::TransferResultRequest = match parse_json(&body) {
        Ok(request) => request,
        Err(message) => return invalid(message),
    };
    let parsed = (|| {
        let kind = match request.check_type.as_str() {
            wire::CHECK_TYPE_WITHDRAW => TransferKind::Collect,
            wire::CHECK_TYPE_DEPOSIT => TransferKind::Payout,
            _ => return Err(InvalidValue::new("check_type", "must be 1 or 2")),
        };
        parse_count(&request.req_cnt, request.req_list.len())?;
        parse_dtime(&request.tran_dtime)?;
        let mut queries = Vec::with_capacity(request.req_list.len());
        for item in &request.req_list {
            queries.push((
                item.tran_no.clone(),
                BankTranId::parse(&item.org_bank_tran_id)?.to_string(),
                parse_date("org_bank_tran_date", &item.org_bank_tran_date)?,
                TransferAmount::parse(&item.org_tran_amt)?.won(),
            ));
        }
        Ok((kind, queries))
    })();
    let (kind, queries) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => return invalid(error.to_string()),
    };
    let sandbox = state.clone();
    under_faults(&state, FaultOp::Result, move |inject_error| async move {
        if inject_error {
            let (header, bank_rsp_code, bank_rsp_message) =
                verdict(Err(RefusalCode::BankSystemError));
            return Ok(reply(wire::TransferResultReply {
                header,
                bank_rsp_code,
                bank_rsp_message,
                ..wire::TransferResultReply::default()
            }));
        }
        let mut results = Vec::with_capacity(queries.len());
        for (tran_no, id, date, amount) in queries {
            let record = sandbox.store.transfer(&date, &id).await?;
            let (code, message, record) = match record {
                None => (
                    wire::BANK_RSP_TRANSFER_NOT_FOUND.to_owned(),
                    "no transfer under this id on that day".to_owned(),
                    None,
                ),
                Some(record) if record.kind != kind || record.amount != amount => (
                    wire::bank_rsp_code(RefusalCode::OriginalMismatch)
                        .expect("a bank code")
                        .to_owned(),
                    message_for(RefusalCode::OriginalMismatch),
                    None,
                ),
                Some(record) => (
                    record.bank_rsp_code.clone(),
                    record.bank_rsp_message.clone(),
                    Some(record),
                ),
            };
            results.push(wire::TransferResultEntry {
                tran_no,
                bank_tran_id: id,
                bank_tran_date: date,
                bank_tran_dtm: record
                    .as_ref()
                    .map(|r| kst::format_dtm(kst::from_micros(r.processed_at)))
                    .unwrap_or_default(),
                bank_code_tran: record
                    .as_ref()
                    .map(|r| r.bank_code.clone())
                    .unwrap_or_default(),
                bank_rsp_code: code,
                bank_rsp_message: message,
                tran_amt: record.map(|r| r.amount.to_string()).unwrap_or_default(),
            });
        }
        Ok(reply(wire::TransferResultReply {
            header: header(wire::RSP_OK, MESSAGE_OK),
            bank_rsp_code: wire::BANK_RSP_OK.to_owned(),
            bank_rsp_message: MESSAGE_OK.to_owned(),
            res_cnt: results.len().to_string(),
            res_list: results,
        }))
    })
    .await
}

pub(super) async fn transaction_list(
    State(state): Shared,
    query: Result<Query<wire::StatementQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return invalid("the query is not a transaction list request of the expected shape");
    };
    let parsed = (|| {
        BankTranId::parse(&query.bank_tran_id)?;
        parse_dtime(&query.tran_dtime)?;
        let account = parse_account(&query.bank_code_std, &query.account_num)?;
        if query.inquiry_base != "D" {
            return Err(InvalidValue::new("inquiry_base", "must be D"));
        }
        let direction = match query.inquiry_type.as_str() {
            "A" => None,
            "I" => Some(EntryDirection::Deposit),
            "O" => Some(EntryDirection::Withdrawal),
            _ => return Err(InvalidValue::new("inquiry_type", "must be A, I or O")),
        };
        let newest_first = match query.sort_order.as_str() {
            "A" => false,
            "D" => true,
            _ => return Err(InvalidValue::new("sort_order", "must be A or D")),
        };
        let from_date = parse_date("from_date", &query.from_date)?;
        let to_date = parse_date("to_date", &query.to_date)?;
        if from_date > to_date {
            return Err(InvalidValue::new("from_date", "must not be after to_date"));
        }
        let after_id = match query.befor_inquiry_trace_info.as_deref() {
            None | Some("") => None,
            Some(trace) => Some(trace.parse::<i64>().ok().filter(|id| *id > 0).ok_or(
                InvalidValue::new("befor_inquiry_trace_info", "is not a trace this bank gave"),
            )?),
        };
        Ok((
            account,
            direction,
            newest_first,
            from_date,
            to_date,
            after_id,
        ))
    })();
    let (account, direction, newest_first, from_date, to_date, after_id) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => return invalid(error.to_string()),
    };
    let sandbox = state.clone();
    under_faults(&state, FaultOp::Statement, move |inject_error| async move {
        let refusal = if inject_error {
            Some(RefusalCode::BankSystemError)
        } else if account != sandbox.master {
            // The platform reads its own account's statement, not its members'.
            Some(RefusalCode::NotPermitted)
        } else {
            None
        };
        if let Some(code) = refusal {
            let (header, bank_rsp_code, bank_rsp_message) = verdict(Err(code));
            return Ok(reply(wire::StatementReply {
                header,
                bank_tran_id: query.bank_tran_id,
                bank_rsp_code,
                bank_rsp_message,
                ..wire::StatementReply::default()
            }));
        }
        let limit = sandbox.statement_page_size;
        let mut rows = sandbox
            .store
            .statement(StatementFilter {
                account: &account,
                from_date: &from_date,
                to_date: &to_date,
                direction,
                newest_first,
                after_id,
                limit,
            })
            .await?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let balance = sandbox.store.master().await?.balance;
        let (header, bank_rsp_code, bank_rsp_message) = verdict(Ok(()));
        Ok(reply(wire::StatementReply {
            header,
            bank_tran_id: query.bank_tran_id,
            bank_tran_date: kst::format_date(kst::bank_date(OffsetDateTime::now_utc())),
            bank_code_tran: account.bank_code.to_string(),
            bank_rsp_code,
            bank_rsp_message,
            account_num_masked: account.account_number.masked(),
            balance_amt: balance.to_string(),
            page_record_cnt: rows.len().to_string(),
            next_page_yn: if more { "Y" } else { "N" }.to_owned(),
            befor_inquiry_trace_info: match (more, rows.last()) {
                (true, Some(last)) => last.id.to_string(),
                _ => String::new(),
            },
            res_list: rows
                .into_iter()
                .map(|row| {
                    let at = kst::from_micros(row.tran_at);
                    wire::StatementRow {
                        tran_date: kst::format_date(kst::bank_date(at)),
                        tran_time: kst::format_time(at),
                        inout_type: match row.direction {
                            EntryDirection::Deposit => wire::INOUT_DEPOSIT,
                            EntryDirection::Withdrawal => wire::INOUT_WITHDRAWAL,
                        }
                        .to_owned(),
                        tran_type: row.tran_type,
                        print_content: row.print_content,
                        tran_amt: row.amount.to_string(),
                        after_balance_amt: row.balance_after.to_string(),
                        branch_name: String::new(),
                        bank_tran_id: row.bank_tran_id.unwrap_or_default(),
                        tran_dtm: kst::format_dtm(at),
                    }
                })
                .collect(),
        }))
    })
    .await
}
