//! The JSON the adapter and the sandbox exchange, shaped after the Korean open-banking API
//! (오픈뱅킹 API v2.0): field names, digit-string amounts and KST digit-string times are the
//! API's. Both sides use these definitions, so the two cannot drift apart; the sandbox's tests
//! that send hand-written JSON pin the shape itself.
//!
//! Every reply carries `rsp_code`: `A0000` when processed, `A0001` when the request is malformed,
//! `A0002` when the bank refused, with the reason in `bank_rsp_code` (`000` is success). The
//! sandbox's `bank_rsp_code` values are listed in [`BANK_RSP_CODES`]. Fields marked "sandbox
//! extension" are not in the public API but are needed to model what it leaves to contracts
//! (payer numbers of debit consents, execution times, request ids on statement lines).
//!
//! Requests refuse unknown fields, so that a misspelt field fails loudly in tests; replies are
//! read tolerantly (missing fields default to empty), as a client of a real bank must.

use serde::{Deserialize, Serialize};

use crate::error::RefusalCode;

/// The request was processed; per-transfer results are in `bank_rsp_code`.
pub(crate) const RSP_OK: &str = "A0000";
/// The request is malformed (a missing or invalid field); nothing was processed.
pub(crate) const RSP_INVALID: &str = "A0001";
/// The bank refused; `bank_rsp_code` says why.
pub(crate) const RSP_REFUSED: &str = "A0002";

/// The bank executed the request.
pub(crate) const BANK_RSP_OK: &str = "000";
/// A transfer-result inquiry found no transfer under that id on that day.
pub(crate) const BANK_RSP_TRANSFER_NOT_FOUND: &str = "511";

/// The bank's refusal codes and what they mean here.
pub(crate) const BANK_RSP_CODES: [(&str, RefusalCode); 8] = [
    ("111", RefusalCode::AccountNotFound),
    ("211", RefusalCode::InsufficientFunds),
    ("311", RefusalCode::ConsentMissing),
    ("312", RefusalCode::ConsentConflict),
    ("411", RefusalCode::DuplicateBankTranId),
    ("412", RefusalCode::OriginalMismatch),
    ("421", RefusalCode::NotPermitted),
    ("911", RefusalCode::BankSystemError),
];

/// The `bank_rsp_code` a bank sends for a refusal. Codes that only the client decides
/// (`invalid_request` is an `rsp_code`; unreachable and rejected never reach a bank) have none.
pub(crate) fn bank_rsp_code(code: RefusalCode) -> Option<&'static str> {
    BANK_RSP_CODES
        .iter()
        .find(|(_, refusal)| *refusal == code)
        .map(|(wire, _)| *wire)
}

/// The refusal a `bank_rsp_code` stands for, if it is one we know.
pub(crate) fn refusal(bank_rsp_code: &str) -> Option<RefusalCode> {
    BANK_RSP_CODES
        .iter()
        .find(|(wire, _)| *wire == bank_rsp_code)
        .map(|(_, refusal)| *refusal)
}

/// `cntr_account_type` for an account named by its number (the only kind used here).
pub(crate) const CNTR_ACCOUNT_TYPE_NUMBER: &str = "N";
/// `check_type` of a transfer-result inquiry about a withdrawal (our collect).
pub(crate) const CHECK_TYPE_WITHDRAW: &str = "1";
/// `check_type` of a transfer-result inquiry about a deposit (our payout).
pub(crate) const CHECK_TYPE_DEPOSIT: &str = "2";
/// `inout_type` of a statement line that added money.
pub(crate) const INOUT_DEPOSIT: &str = "입금";
/// `inout_type` of a statement line that took money out.
pub(crate) const INOUT_WITHDRAWAL: &str = "출금";

/// The fields every reply starts with.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct ReplyHeader {
    /// The bank's id of this reply.
    pub api_tran_id: String,
    /// When the reply was made, `yyyyMMddHHmmssSSS` KST.
    pub api_tran_dtm: String,
    pub rsp_code: String,
    pub rsp_message: String,
}

/// A reply, whatever its kind, starts with a [`ReplyHeader`].
pub(crate) trait Reply: serde::de::DeserializeOwned + Default {
    fn header(&self) -> &ReplyHeader;
}

macro_rules! replies {
    ($($reply:ty),*) => {
        $(impl Reply for $reply {
            fn header(&self) -> &ReplyHeader {
                &self.header
            }
        })*
    };
}

replies!(
    RealNameReply,
    ConsentReply,
    WithdrawReply,
    DepositReply,
    TransferResultReply,
    StatementReply
);

/// `POST /v2.0/inquiry/real_name`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RealNameRequest {
    pub bank_tran_id: String,
    pub bank_code_std: String,
    pub account_num: String,
    /// `yyyyMMddHHmmss` KST.
    pub tran_dtime: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct RealNameReply {
    #[serde(flatten)]
    pub header: ReplyHeader,
    pub bank_tran_id: String,
    pub bank_tran_date: String,
    pub bank_code_tran: String,
    pub bank_rsp_code: String,
    pub bank_rsp_message: String,
    pub bank_code_std: String,
    pub account_num_masked: String,
    pub account_holder_name: String,
}

/// `POST /v2.0/consent/register` (sandbox extension, after CMS 출금이체 신청).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsentRegisterRequest {
    pub bank_tran_id: String,
    pub bank_code_std: String,
    pub account_num: String,
    pub payer_num: String,
    pub tran_dtime: String,
}

/// `POST /v2.0/consent/revoke` (sandbox extension, after CMS 출금이체 해지).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsentRevokeRequest {
    pub bank_tran_id: String,
    pub payer_num: String,
    pub tran_dtime: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct ConsentReply {
    #[serde(flatten)]
    pub header: ReplyHeader,
    pub bank_tran_id: String,
    pub bank_rsp_code: String,
    pub bank_rsp_message: String,
    pub payer_num: String,
}

/// `POST /v2.0/transfer/withdraw/acnt_num` (출금이체): our collect.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WithdrawRequest {
    pub bank_tran_id: String,
    /// Always `N`: the counter account is named by its number.
    pub cntr_account_type: String,
    /// The account credited: the platform's master account.
    pub cntr_account_num: String,
    /// Printed on the master account.
    pub dps_print_content: String,
    /// The debited account's bank.
    pub bank_code_std: String,
    /// The debited account.
    pub account_num: String,
    /// The payer number of the debit consent (sandbox extension).
    pub payer_num: String,
    /// Printed on the debited account.
    pub wd_print_content: String,
    pub tran_amt: String,
    pub tran_dtime: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct WithdrawReply {
    #[serde(flatten)]
    pub header: ReplyHeader,
    pub dps_bank_code_std: String,
    pub dps_account_num_masked: String,
    pub dps_print_content: String,
    pub bank_tran_id: String,
    pub bank_tran_date: String,
    /// When the transfer was executed, `yyyyMMddHHmmssSSS` KST (sandbox extension).
    pub bank_tran_dtm: String,
    pub bank_code_tran: String,
    pub bank_rsp_code: String,
    pub bank_rsp_message: String,
    pub bank_code_std: String,
    pub account_num_masked: String,
    pub print_content: String,
    pub account_holder_name: String,
    pub tran_amt: String,
}

/// `POST /v2.0/transfer/deposit/acnt_num` (입금이체): our payout. A batch of transfers from the
/// master account, each with its own id and result.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DepositRequest {
    pub cntr_account_type: String,
    /// The account debited: the platform's master account.
    pub cntr_account_num: String,
    /// Printed on the master account.
    pub wd_print_content: String,
    pub tran_dtime: String,
    /// The number of items in `req_list`, as a digit string.
    pub req_cnt: String,
    pub req_list: Vec<DepositItem>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DepositItem {
    /// The item's position, `1`-based, echoed in the reply.
    pub tran_no: String,
    pub bank_tran_id: String,
    pub bank_code_std: String,
    pub account_num: String,
    /// Printed on the credited account.
    pub print_content: String,
    pub tran_amt: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct DepositReply {
    #[serde(flatten)]
    pub header: ReplyHeader,
    pub wd_bank_code_std: String,
    pub wd_account_num_masked: String,
    pub wd_print_content: String,
    pub res_cnt: String,
    pub res_list: Vec<DepositResult>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct DepositResult {
    pub tran_no: String,
    pub bank_tran_id: String,
    pub bank_tran_date: String,
    /// Sandbox extension, as in [`WithdrawReply::bank_tran_dtm`].
    pub bank_tran_dtm: String,
    pub bank_code_tran: String,
    pub bank_rsp_code: String,
    pub bank_rsp_message: String,
    pub bank_code_std: String,
    pub account_num_masked: String,
    pub print_content: String,
    pub account_holder_name: String,
    pub tran_amt: String,
}

/// `POST /v2.0/transfer/result` (이체결과조회).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TransferResultRequest {
    /// `1` for withdrawals (collects), `2` for deposits (payouts).
    pub check_type: String,
    pub tran_dtime: String,
    pub req_cnt: String,
    pub req_list: Vec<TransferResultItem>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TransferResultItem {
    pub tran_no: String,
    pub org_bank_tran_id: String,
    /// The original request's bank day, `yyyyMMdd`.
    pub org_bank_tran_date: String,
    pub org_tran_amt: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct TransferResultReply {
    #[serde(flatten)]
    pub header: ReplyHeader,
    /// Why the inquiry itself was refused, when `rsp_code` is `A0002`; the originals' results
    /// are per item.
    pub bank_rsp_code: String,
    pub bank_rsp_message: String,
    pub res_cnt: String,
    pub res_list: Vec<TransferResultEntry>,
}

/// One inquiry's answer: `bank_rsp_code` is the original transfer's result (`000` executed, a
/// refusal code), `511` when there is none, or `412` when the inquiry does not match it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct TransferResultEntry {
    pub tran_no: String,
    pub bank_tran_id: String,
    pub bank_tran_date: String,
    pub bank_tran_dtm: String,
    pub bank_code_tran: String,
    pub bank_rsp_code: String,
    pub bank_rsp_message: String,
    pub tran_amt: String,
}

/// The query of `GET /v2.0/account/transaction_list/acnt_num` (거래내역조회).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatementQuery {
    pub bank_tran_id: String,
    pub bank_code_std: String,
    pub account_num: String,
    /// `A` all lines, `I` deposits only, `O` withdrawals only.
    pub inquiry_type: String,
    /// `D`: by date (the only base).
    pub inquiry_base: String,
    pub from_date: String,
    pub to_date: String,
    /// `A` oldest first, `D` newest first.
    pub sort_order: String,
    pub tran_dtime: String,
    /// The previous page's trace, empty or absent on the first page.
    #[serde(default)]
    pub befor_inquiry_trace_info: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct StatementReply {
    #[serde(flatten)]
    pub header: ReplyHeader,
    pub bank_tran_id: String,
    pub bank_tran_date: String,
    pub bank_code_tran: String,
    pub bank_rsp_code: String,
    pub bank_rsp_message: String,
    pub account_num_masked: String,
    /// The account's balance now.
    pub balance_amt: String,
    pub page_record_cnt: String,
    /// `Y` when another page follows.
    pub next_page_yn: String,
    /// Pass back to get the next page.
    pub befor_inquiry_trace_info: String,
    pub res_list: Vec<StatementRow>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct StatementRow {
    pub tran_date: String,
    pub tran_time: String,
    /// `입금` or `출금`.
    pub inout_type: String,
    /// `이체` for API transfers, `현금` for cash at the counter (the sandbox's admin deposits).
    pub tran_type: String,
    pub print_content: String,
    pub tran_amt: String,
    pub after_balance_amt: String,
    pub branch_name: String,
    /// Sandbox extension: the request id behind the line, empty for cash.
    pub bank_tran_id: String,
    /// Sandbox extension: the exact time, `yyyyMMddHHmmssSSS` KST.
    pub tran_dtm: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bank_refusal_maps_both_ways() {
        for (wire, code) in BANK_RSP_CODES {
            assert_eq!(bank_rsp_code(code), Some(wire));
            assert_eq!(refusal(wire), Some(code));
        }
        assert_eq!(refusal(BANK_RSP_OK), None);
        assert_eq!(refusal(BANK_RSP_TRANSFER_NOT_FOUND), None);
        assert_eq!(bank_rsp_code(RefusalCode::BankUnreachable), None);
    }

    #[test]
    fn replies_parse_from_a_bare_envelope() {
        let reply: WithdrawReply =
            serde_json::from_str(r#"{"rsp_code": "A0001", "rsp_message": "bad", "extra": 1}"#)
                .unwrap();
        assert_eq!(reply.header.rsp_code, RSP_INVALID);
        assert_eq!(reply.bank_rsp_code, "");
    }
}
