//! `HttpBank`: the bank gateway over HTTP, speaking the open-banking shaped API of [`crate::wire`]
//! (the sandbox bank's, and the shape a real bank's adapter starts from).
//!
//! How an exchange becomes an outcome, for calls that move money:
//!
//! | what happened | outcome |
//! |---|---|
//! | a reply that says the transfer was executed | `Succeeded` |
//! | a reply that says the bank refused, with a code we know | `Failed(code)` |
//! | the connection could not be opened | `Failed(bank_unreachable)` |
//! | HTTP 4xx without an open-banking reply | `Failed(request_rejected)` |
//! | a timeout, a dropped connection, HTTP 5xx, an unreadable reply, a code we do not know, a reply about another transfer | `Unknown` |
//!
//! Everything that is not positively known to have left the money where it was is `Unknown`.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::StatusCode;
use serde::Serialize;
use time::{Date, OffsetDateTime};

use crate::account::{BankAccount, HolderName, PayerNumber};
use crate::error::{BankError, RefusalCode};
use crate::gateway::{
    BankGateway, CollectRequest, DebitConsent, EntryDirection, InquiryOutcome, PayoutRequest,
    RealNameOutcome, StatementCursor, StatementEntry, StatementPage, TransferKind, TransferOutcome,
    TransferQuery,
};
use crate::kst;
use crate::tran_id::{BankTranId, BankTranIdGenerator, InstitutionCode};
use crate::transfer::TransferAmount;
use crate::wire::{self, Reply, ReplyHeader};

/// How long a call may take by default, connection included. Open-banking transfers answer in
/// seconds; a bank that takes longer is treated as not answering (`Unknown`).
pub const TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);
/// How long opening a connection may take by default.
pub const CONNECT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(3);

/// Where the bank is and who we are to it.
#[derive(Debug, Clone)]
pub struct HttpBankConfig {
    /// The API's base URL, e.g. `http://127.0.0.1:8090`; paths such as `/v2.0/inquiry/real_name`
    /// are appended.
    pub base_url: String,
    /// Our institution code, the first part of every request id.
    pub institution: InstitutionCode,
    /// The platform's master account at this bank: collects credit it, payouts debit it.
    pub master: BankAccount,
    /// The longest a call may take, connection included.
    pub timeout: Duration,
    /// The longest opening a connection may take.
    pub connect_timeout: Duration,
}

impl HttpBankConfig {
    /// A configuration with the default timeouts.
    pub fn new(base_url: &str, institution: InstitutionCode, master: BankAccount) -> Self {
        HttpBankConfig {
            base_url: base_url.to_owned(),
            institution,
            master,
            timeout: TIMEOUT_DEFAULT,
            connect_timeout: CONNECT_TIMEOUT_DEFAULT,
        }
    }
}

/// The HTTP client could not be built (no TLS backend).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the bank's HTTP client: {0}")]
pub struct ClientBuildError(#[source] reqwest::Error);

/// The bank gateway over HTTP.
#[derive(Debug)]
pub struct HttpBank {
    client: reqwest::Client,
    base_url: String,
    master: BankAccount,
    ids: BankTranIdGenerator,
}

/// What came back from one HTTP exchange, before its meaning for the operation is decided.
enum Exchange<T> {
    /// An open-banking reply (HTTP 2xx, or 4xx with a reply body).
    Reply(T),
    /// No connection could be opened: not one byte of the request reached the bank.
    NotSent(String),
    /// HTTP 4xx without an open-banking reply: refused before processing.
    Rejected(StatusCode),
    /// The request may have reached the bank, but no usable reply came back.
    NoAnswer(String),
}

/// What a reply says about the request it answers.
enum Verdict {
    /// Executed (`bank_rsp_code` `000`).
    Done,
    /// Refused with a code we know; nothing was done.
    Refused(RefusalCode, String),
    /// A code we do not know: we cannot tell what happened.
    Unrecognized(String),
}

impl HttpBank {
    pub fn new(config: HttpBankConfig) -> Result<HttpBank, ClientBuildError> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            // A redirect would resend a transfer to somewhere we were not configured to trust.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(ClientBuildError)?;
        Ok(HttpBank {
            client,
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            master: config.master,
            ids: BankTranIdGenerator::new(config.institution),
        })
    }

    async fn post<B: Serialize, T: Reply>(&self, path: &'static str, body: &B) -> Exchange<T> {
        let request = self
            .client
            .post(format!("{}{path}", self.base_url))
            .json(body);
        measured(path, request).await
    }

    async fn get<Q: Serialize, T: Reply>(&self, path: &'static str, query: &Q) -> Exchange<T> {
        let request = self
            .client
            .get(format!("{}{path}", self.base_url))
            .query(query);
        measured(path, request).await
    }

    /// The outcome of a money-moving exchange whose reply said `Done`: checked to be about our
    /// transfer, because a reply about another one proves nothing about ours.
    fn succeeded(
        ours: &BankTranId,
        amount: TransferAmount,
        header: &ReplyHeader,
        bank_tran_id: &str,
        tran_amt: &str,
        bank_tran_dtm: &str,
    ) -> TransferOutcome {
        if bank_tran_id != ours.as_str() || TransferAmount::parse(tran_amt) != Ok(amount) {
            return TransferOutcome::Unknown {
                reason: "the reply describes another transfer than the one requested".into(),
            };
        }
        match executed_at(bank_tran_dtm, header) {
            Some(executed_at) => TransferOutcome::Succeeded {
                bank_tran_id: ours.clone(),
                amount,
                executed_at,
            },
            None => TransferOutcome::Unknown {
                reason: "the reply reports success without a readable time".into(),
            },
        }
    }
}

/// [`exchange`], counted and timed per API path and outcome (`mypay_bank_calls_total`,
/// `mypay_bank_call_seconds`): the path names the operation and carries no account data.
async fn measured<T: Reply>(path: &'static str, request: reqwest::RequestBuilder) -> Exchange<T> {
    let started = std::time::Instant::now();
    let exchange = exchange(request).await;
    let outcome = match &exchange {
        Exchange::Reply(_) => "reply",
        Exchange::NotSent(_) => "not_sent",
        Exchange::Rejected(_) => "rejected",
        Exchange::NoAnswer(_) => "no_answer",
    };
    metrics::counter!("mypay_bank_calls_total", "operation" => path, "outcome" => outcome)
        .increment(1);
    metrics::histogram!("mypay_bank_call_seconds", "operation" => path)
        .record(started.elapsed().as_secs_f64());
    exchange
}

/// Sends a request and sorts the result into the four cases an outcome is decided from.
async fn exchange<T: Reply>(request: reqwest::RequestBuilder) -> Exchange<T> {
    let response = match request.send().await {
        Ok(response) => response,
        // A connect error means the TCP (or TLS) connection was never established, so no byte
        // of the request reached the bank and nothing can have been executed. That makes it a
        // plain failure the caller may retry, unlike every later error. Errors on a pooled
        // connection that was already open are not connect errors and land below as unknown.
        Err(error) if error.is_connect() => return Exchange::NotSent(describe(&error)),
        Err(error) => return Exchange::NoAnswer(describe(&error)),
    };
    let status = response.status();
    let body = match response.bytes().await {
        Ok(body) => body,
        Err(error) => return Exchange::NoAnswer(describe(&error)),
    };
    let reply = serde_json::from_slice::<T>(&body)
        .ok()
        .filter(|reply| !reply.header().rsp_code.is_empty());
    if status.is_success() {
        match reply {
            Some(reply) => Exchange::Reply(reply),
            None => Exchange::NoAnswer(format!("HTTP {status} with an unreadable reply")),
        }
    } else if status.is_client_error() {
        match reply {
            Some(reply) => Exchange::Reply(reply),
            None => Exchange::Rejected(status),
        }
    } else {
        // 5xx (a gateway timeout, an error after the bank may have acted), or a redirect we do
        // not follow: nothing here says whether the request was executed.
        Exchange::NoAnswer(format!("HTTP {status}"))
    }
}

/// An error's description without its URL, which for a statement carries an account number.
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "the reply broke off"
    } else {
        "the exchange failed"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn verdict(header: &ReplyHeader, bank_rsp_code: &str, bank_rsp_message: &str) -> Verdict {
    match header.rsp_code.as_str() {
        wire::RSP_INVALID => {
            Verdict::Refused(RefusalCode::InvalidRequest, header.rsp_message.clone())
        }
        wire::RSP_OK | wire::RSP_REFUSED => {
            if bank_rsp_code == wire::BANK_RSP_OK {
                Verdict::Done
            } else if let Some(code) = wire::refusal(bank_rsp_code) {
                Verdict::Refused(code, bank_rsp_message.to_owned())
            } else {
                Verdict::Unrecognized(format!(
                    "unrecognised bank_rsp_code {bank_rsp_code:?} ({bank_rsp_message})"
                ))
            }
        }
        other => Verdict::Unrecognized(format!(
            "unrecognised rsp_code {other:?} ({})",
            header.rsp_message
        )),
    }
}

/// The time a transfer was executed: the bank's execution time, else the reply's time.
fn executed_at(bank_tran_dtm: &str, header: &ReplyHeader) -> Option<OffsetDateTime> {
    kst::parse_dtm(bank_tran_dtm).or_else(|| kst::parse_dtm(&header.api_tran_dtm))
}

/// The outcome of a collect or payout exchange that produced no reply.
fn transfer_outcome_without_reply<T>(exchange: Exchange<T>) -> Result<T, TransferOutcome> {
    match exchange {
        Exchange::Reply(reply) => Ok(reply),
        Exchange::NotSent(reason) => Err(TransferOutcome::Failed {
            code: RefusalCode::BankUnreachable,
            message: reason,
        }),
        Exchange::Rejected(status) => Err(TransferOutcome::Failed {
            code: RefusalCode::RequestRejected,
            message: format!("the bank answered HTTP {status}"),
        }),
        Exchange::NoAnswer(reason) => Err(TransferOutcome::Unknown { reason }),
    }
}

/// The error of a call that moves nothing and produced no reply. Whether the request was sent
/// does not matter here: such a call is safe to repeat either way.
fn inquiry_error_without_reply<T>(exchange: Exchange<T>) -> Result<T, BankError> {
    match exchange {
        Exchange::Reply(reply) => Ok(reply),
        Exchange::NotSent(reason) => Err(BankError::Unavailable { reason }),
        Exchange::Rejected(status) => Err(BankError::Refused {
            code: RefusalCode::RequestRejected,
            message: format!("the bank answered HTTP {status}"),
        }),
        Exchange::NoAnswer(reason) => Err(BankError::Unavailable { reason }),
    }
}

/// A reply that moved nothing, as a `Result`.
fn plain_verdict(
    header: &ReplyHeader,
    bank_rsp_code: &str,
    bank_rsp_message: &str,
) -> Result<(), BankError> {
    match verdict(header, bank_rsp_code, bank_rsp_message) {
        Verdict::Done => Ok(()),
        Verdict::Refused(code, message) => Err(BankError::Refused { code, message }),
        Verdict::Unrecognized(reason) => Err(BankError::Unavailable { reason }),
    }
}

fn now_dtime() -> String {
    kst::format_dtime(OffsetDateTime::now_utc())
}

fn log_transfer(
    kind: TransferKind,
    id: &BankTranId,
    account: &BankAccount,
    outcome: &TransferOutcome,
) {
    match outcome {
        TransferOutcome::Succeeded { amount, .. } => tracing::info!(
            kind = kind.as_str(), bank_tran_id = %id, bank_code = %account.bank_code,
            account = %account.account_number.masked(), amount = amount.won(), "bank transfer succeeded"
        ),
        TransferOutcome::Failed { code, message } => tracing::info!(
            kind = kind.as_str(), bank_tran_id = %id, bank_code = %account.bank_code,
            account = %account.account_number.masked(), %code, message, "bank transfer refused"
        ),
        TransferOutcome::Unknown { reason } => tracing::warn!(
            kind = kind.as_str(), bank_tran_id = %id, bank_code = %account.bank_code,
            account = %account.account_number.masked(), reason, "bank transfer outcome unknown"
        ),
    }
}

#[async_trait]
impl BankGateway for HttpBank {
    fn next_tran_id(&self) -> BankTranId {
        self.ids.next_id()
    }

    async fn real_name(&self, account: &BankAccount) -> Result<RealNameOutcome, BankError> {
        let request = wire::RealNameRequest {
            bank_tran_id: self.ids.next_id().to_string(),
            bank_code_std: account.bank_code.to_string(),
            account_num: account.account_number.expose().to_owned(),
            tran_dtime: now_dtime(),
        };
        let reply: wire::RealNameReply =
            inquiry_error_without_reply(self.post("/v2.0/inquiry/real_name", &request).await)?;
        match verdict(&reply.header, &reply.bank_rsp_code, &reply.bank_rsp_message) {
            Verdict::Done => HolderName::parse(&reply.account_holder_name)
                .map(|holder_name| RealNameOutcome::Found { holder_name })
                .map_err(|_| BankError::Unavailable {
                    reason: "the reply carries no readable holder name".into(),
                }),
            Verdict::Refused(RefusalCode::AccountNotFound, _) => Ok(RealNameOutcome::NotFound),
            Verdict::Refused(code, message) => Err(BankError::Refused { code, message }),
            Verdict::Unrecognized(reason) => Err(BankError::Unavailable { reason }),
        }
    }

    async fn register_consent(&self, consent: &DebitConsent) -> Result<(), BankError> {
        let request = wire::ConsentRegisterRequest {
            bank_tran_id: self.ids.next_id().to_string(),
            bank_code_std: consent.account.bank_code.to_string(),
            account_num: consent.account.account_number.expose().to_owned(),
            payer_num: consent.payer_number.to_string(),
            tran_dtime: now_dtime(),
        };
        let reply: wire::ConsentReply =
            inquiry_error_without_reply(self.post("/v2.0/consent/register", &request).await)?;
        plain_verdict(&reply.header, &reply.bank_rsp_code, &reply.bank_rsp_message)
    }

    async fn revoke_consent(&self, payer_number: &PayerNumber) -> Result<(), BankError> {
        let request = wire::ConsentRevokeRequest {
            bank_tran_id: self.ids.next_id().to_string(),
            payer_num: payer_number.to_string(),
            tran_dtime: now_dtime(),
        };
        let reply: wire::ConsentReply =
            inquiry_error_without_reply(self.post("/v2.0/consent/revoke", &request).await)?;
        plain_verdict(&reply.header, &reply.bank_rsp_code, &reply.bank_rsp_message)
    }

    async fn collect(&self, request: &CollectRequest) -> TransferOutcome {
        let body = wire::WithdrawRequest {
            bank_tran_id: request.bank_tran_id.to_string(),
            cntr_account_type: wire::CNTR_ACCOUNT_TYPE_NUMBER.into(),
            cntr_account_num: self.master.account_number.expose().to_owned(),
            dps_print_content: request.master_memo.to_string(),
            bank_code_std: request.from.bank_code.to_string(),
            account_num: request.from.account_number.expose().to_owned(),
            payer_num: request.payer_number.to_string(),
            wd_print_content: request.memo.to_string(),
            tran_amt: request.amount.to_string(),
            tran_dtime: kst::format_dtime(request.requested_at),
        };
        let exchange = self.post("/v2.0/transfer/withdraw/acnt_num", &body).await;
        let outcome = match transfer_outcome_without_reply::<wire::WithdrawReply>(exchange) {
            Err(outcome) => outcome,
            Ok(reply) => {
                match verdict(&reply.header, &reply.bank_rsp_code, &reply.bank_rsp_message) {
                    Verdict::Done => Self::succeeded(
                        &request.bank_tran_id,
                        request.amount,
                        &reply.header,
                        &reply.bank_tran_id,
                        &reply.tran_amt,
                        &reply.bank_tran_dtm,
                    ),
                    Verdict::Refused(code, message) => TransferOutcome::Failed { code, message },
                    Verdict::Unrecognized(reason) => TransferOutcome::Unknown { reason },
                }
            }
        };
        log_transfer(
            TransferKind::Collect,
            &request.bank_tran_id,
            &request.from,
            &outcome,
        );
        outcome
    }

    async fn payout(&self, request: &PayoutRequest) -> TransferOutcome {
        let body = wire::DepositRequest {
            cntr_account_type: wire::CNTR_ACCOUNT_TYPE_NUMBER.into(),
            cntr_account_num: self.master.account_number.expose().to_owned(),
            wd_print_content: request.master_memo.to_string(),
            tran_dtime: kst::format_dtime(request.requested_at),
            req_cnt: "1".into(),
            req_list: vec![wire::DepositItem {
                tran_no: "1".into(),
                bank_tran_id: request.bank_tran_id.to_string(),
                bank_code_std: request.to.bank_code.to_string(),
                account_num: request.to.account_number.expose().to_owned(),
                print_content: request.memo.to_string(),
                tran_amt: request.amount.to_string(),
            }],
        };
        let exchange = self.post("/v2.0/transfer/deposit/acnt_num", &body).await;
        let outcome = match transfer_outcome_without_reply::<wire::DepositReply>(exchange) {
            Err(outcome) => outcome,
            Ok(reply) if reply.header.rsp_code == wire::RSP_INVALID => TransferOutcome::Failed {
                code: RefusalCode::InvalidRequest,
                message: reply.header.rsp_message,
            },
            Ok(reply) => {
                let ours = reply
                    .res_list
                    .iter()
                    .find(|item| item.bank_tran_id == request.bank_tran_id.as_str());
                match ours {
                    None => TransferOutcome::Unknown {
                        reason: "the reply lists no result for the requested transfer".into(),
                    },
                    Some(item) => {
                        match verdict(&reply.header, &item.bank_rsp_code, &item.bank_rsp_message) {
                            Verdict::Done => Self::succeeded(
                                &request.bank_tran_id,
                                request.amount,
                                &reply.header,
                                &item.bank_tran_id,
                                &item.tran_amt,
                                &item.bank_tran_dtm,
                            ),
                            Verdict::Refused(code, message) => {
                                TransferOutcome::Failed { code, message }
                            }
                            Verdict::Unrecognized(reason) => TransferOutcome::Unknown { reason },
                        }
                    }
                }
            }
        };
        log_transfer(
            TransferKind::Payout,
            &request.bank_tran_id,
            &request.to,
            &outcome,
        );
        outcome
    }

    async fn transfer_result(&self, query: &TransferQuery) -> Result<InquiryOutcome, BankError> {
        let body = wire::TransferResultRequest {
            check_type: match query.kind {
                TransferKind::Collect => wire::CHECK_TYPE_WITHDRAW,
                TransferKind::Payout => wire::CHECK_TYPE_DEPOSIT,
            }
            .into(),
            tran_dtime: now_dtime(),
            req_cnt: "1".into(),
            req_list: vec![wire::TransferResultItem {
                tran_no: "1".into(),
                org_bank_tran_id: query.bank_tran_id.to_string(),
                org_bank_tran_date: kst::format_date(kst::bank_date(query.requested_at)),
                org_tran_amt: query.amount.to_string(),
            }],
        };
        let reply: wire::TransferResultReply =
            inquiry_error_without_reply(self.post("/v2.0/transfer/result", &body).await)?;
        if reply.header.rsp_code != wire::RSP_OK {
            // The inquiry itself was refused or is unreadable; the originals' results are only
            // ever reported under A0000.
            plain_verdict(&reply.header, &reply.bank_rsp_code, &reply.bank_rsp_message)?;
            return Err(BankError::Unavailable {
                reason: format!(
                    "rsp_code {:?} without a refusal code",
                    reply.header.rsp_code
                ),
            });
        }
        let item = reply
            .res_list
            .iter()
            .find(|item| item.bank_tran_id == query.bank_tran_id.as_str())
            .ok_or_else(|| BankError::Unavailable {
                reason: "the reply lists no result for the requested transfer".into(),
            })?;
        if item.bank_rsp_code == wire::BANK_RSP_TRANSFER_NOT_FOUND {
            return Ok(InquiryOutcome::NotFound);
        }
        match verdict(&reply.header, &item.bank_rsp_code, &item.bank_rsp_message) {
            Verdict::Done => match Self::succeeded(
                &query.bank_tran_id,
                query.amount,
                &reply.header,
                &item.bank_tran_id,
                &item.tran_amt,
                &item.bank_tran_dtm,
            ) {
                TransferOutcome::Succeeded {
                    bank_tran_id,
                    amount,
                    executed_at,
                } => Ok(InquiryOutcome::Succeeded {
                    bank_tran_id,
                    amount,
                    executed_at,
                }),
                TransferOutcome::Failed { message, .. }
                | TransferOutcome::Unknown { reason: message } => {
                    Err(BankError::Unavailable { reason: message })
                }
            },
            // A mismatch is about the inquiry, not the original: it was asked wrongly.
            Verdict::Refused(RefusalCode::OriginalMismatch, message) => Err(BankError::Refused {
                code: RefusalCode::OriginalMismatch,
                message,
            }),
            Verdict::Refused(code, message) => Ok(InquiryOutcome::Failed { code, message }),
            Verdict::Unrecognized(reason) => Err(BankError::Unavailable { reason }),
        }
    }

    async fn statement(
        &self,
        date: Date,
        cursor: Option<&StatementCursor>,
    ) -> Result<StatementPage, BankError> {
        let day = kst::format_date(date);
        let query = wire::StatementQuery {
            bank_tran_id: self.ids.next_id().to_string(),
            bank_code_std: self.master.bank_code.to_string(),
            account_num: self.master.account_number.expose().to_owned(),
            inquiry_type: "A".into(),
            inquiry_base: "D".into(),
            from_date: day.clone(),
            to_date: day,
            sort_order: "A".into(),
            tran_dtime: now_dtime(),
            befor_inquiry_trace_info: cursor.map(|c| c.as_str().to_owned()),
        };
        let reply: wire::StatementReply = inquiry_error_without_reply(
            self.get("/v2.0/account/transaction_list/acnt_num", &query)
                .await,
        )?;
        plain_verdict(&reply.header, &reply.bank_rsp_code, &reply.bank_rsp_message)?;
        let entries = reply
            .res_list
            .iter()
            .map(statement_entry)
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| BankError::Unavailable {
                reason: "the statement has an unreadable line".into(),
            })?;
        let next = (reply.next_page_yn == "Y")
            .then(|| StatementCursor::new(reply.befor_inquiry_trace_info.clone()));
        let balance_won = money::parse_signed_amount(&reply.balance_amt, money::Currency::KRW).ok();
        Ok(StatementPage {
            entries,
            next,
            balance_won,
        })
    }
}

/// Reads one statement line; `None` when any field is unreadable.
fn statement_entry(row: &wire::StatementRow) -> Option<StatementEntry> {
    let at = kst::parse_dtm(&row.tran_dtm)
        .or_else(|| kst::parse_dtime(&format!("{}{}", row.tran_date, row.tran_time)))?;
    let direction = match row.inout_type.as_str() {
        wire::INOUT_DEPOSIT => EntryDirection::Deposit,
        wire::INOUT_WITHDRAWAL => EntryDirection::Withdrawal,
        _ => return None,
    };
    let amount_won = money::parse_amount(&row.tran_amt, money::Currency::KRW).ok()?;
    let balance_after_won =
        money::parse_signed_amount(&row.after_balance_amt, money::Currency::KRW).ok()?;
    let bank_tran_id = match row.bank_tran_id.as_str() {
        "" => None,
        id => Some(BankTranId::parse(id).ok()?),
    };
    Some(StatementEntry {
        at,
        direction,
        amount_won,
        balance_after_won,
        memo: row.print_content.clone(),
        bank_tran_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(rsp_code: &str) -> ReplyHeader {
        ReplyHeader {
            rsp_code: rsp_code.into(),
            api_tran_dtm: "20260302000405678".into(),
            ..ReplyHeader::default()
        }
    }

    #[test]
    fn only_known_codes_are_refusals() {
        assert!(matches!(
            verdict(&header("A0000"), "000", ""),
            Verdict::Done
        ));
        assert!(matches!(
            verdict(&header("A0002"), "211", "잔액부족"),
            Verdict::Refused(RefusalCode::InsufficientFunds, _)
        ));
        assert!(matches!(
            verdict(&header("A0001"), "", ""),
            Verdict::Refused(RefusalCode::InvalidRequest, _)
        ));
        // A bank code or an API code we have never seen may mean "still processing": unknown.
        assert!(matches!(
            verdict(&header("A0002"), "999", ""),
            Verdict::Unrecognized(_)
        ));
        assert!(matches!(
            verdict(&header("A0007"), "000", ""),
            Verdict::Unrecognized(_)
        ));
        assert!(matches!(
            verdict(&header(""), "000", ""),
            Verdict::Unrecognized(_)
        ));
    }

    #[test]
    fn a_success_about_another_transfer_is_unknown() {
        let ours = BankTranId::parse("M202600001U000000001").unwrap();
        let amount = TransferAmount::new(5000).unwrap();
        let ok = HttpBank::succeeded(&ours, amount, &header("A0000"), ours.as_str(), "5000", "");
        assert!(matches!(ok, TransferOutcome::Succeeded { .. }), "{ok:?}");
        let other_id = HttpBank::succeeded(
            &ours,
            amount,
            &header("A0000"),
            "M202600001U000000002",
            "5000",
            "",
        );
        assert!(matches!(other_id, TransferOutcome::Unknown { .. }));
        let other_amount =
            HttpBank::succeeded(&ours, amount, &header("A0000"), ours.as_str(), "5001", "");
        assert!(matches!(other_amount, TransferOutcome::Unknown { .. }));
        let no_time = HttpBank::succeeded(
            &ours,
            amount,
            &ReplyHeader::default(),
            ours.as_str(),
            "5000",
            "",
        );
        assert!(matches!(no_time, TransferOutcome::Unknown { .. }));
    }

    #[test]
    fn statement_lines_are_read_strictly() {
        let row = wire::StatementRow {
            tran_date: "20260302".into(),
            tran_time: "000405".into(),
            inout_type: "입금".into(),
            tran_type: "이체".into(),
            print_content: "충전".into(),
            tran_amt: "15000".into(),
            after_balance_amt: "15000".into(),
            branch_name: String::new(),
            bank_tran_id: "M202600001U000000001".into(),
            tran_dtm: String::new(),
        };
        let entry = statement_entry(&row).unwrap();
        assert_eq!(entry.direction, EntryDirection::Deposit);
        assert_eq!(entry.amount_won, 15000);
        assert_eq!(kst::format_dtime(entry.at), "20260302000405");
        let broken = wire::StatementRow {
            inout_type: "?".into(),
            ..row
        };
        assert!(statement_entry(&broken).is_none());
    }
}
