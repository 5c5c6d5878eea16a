//! The JSON shapes of the wallet routes. Amounts are decimal strings in major units; account
//! numbers and names of other people appear only masked.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use wallet::{HistoryEntry, MoneyTx, Movement, WalletBalance};

use crate::amount::{AmountInput, CurrencyInput};
use crate::time::format_micros;

/// A wallet's balance.
#[derive(Debug, Serialize, ToSchema)]
pub struct WalletView {
    /// The owner (`usr_…`).
    pub member_id: String,
    /// ISO 4217; wallets are kept in KRW.
    #[schema(example = "KRW")]
    pub currency: &'static str,
    /// Posted money.
    #[schema(example = "25000")]
    pub posted: String,
    /// Reserved by withdrawals and payouts still in flight at the bank.
    #[schema(example = "0")]
    pub held: String,
    /// Charges still in flight at the bank; not spendable yet.
    #[schema(example = "0")]
    pub incoming: String,
    /// Posted minus held: what may be spent now.
    #[schema(example = "25000")]
    pub available: String,
}

impl From<WalletBalance> for WalletView {
    fn from(balance: WalletBalance) -> Self {
        WalletView {
            member_id: balance.member_id.to_string(),
            currency: balance.currency.code(),
            posted: balance.posted.to_decimal_string(),
            held: balance.held.to_decimal_string(),
            incoming: balance.incoming.to_decimal_string(),
            available: balance.available.to_decimal_string(),
        }
    }
}

/// The caller's wallets.
#[derive(Debug, Serialize, ToSchema)]
pub struct WalletList {
    /// One per wallet currency, with zero balances before first use.
    pub data: Vec<WalletView>,
}

/// A money transaction from the caller's side.
#[derive(Debug, Serialize, ToSchema)]
pub struct MoneyTxView {
    /// The money transaction number (`mtx_…`), also the ledger transaction's id.
    #[schema(example = "mtx_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B")]
    pub id: String,
    /// `charge`, `withdrawal`, `payout`, `transfer_in` or `transfer_out`.
    #[schema(example = "charge")]
    pub kind: &'static str,
    /// `pending` (the bank's answer is not known yet), `succeeded` or `failed`.
    #[schema(example = "succeeded")]
    pub state: &'static str,
    /// Always positive; the kind says the direction.
    #[schema(example = "10000")]
    pub amount: String,
    #[schema(example = "KRW")]
    pub currency: &'static str,
    /// The other side, masked: a bank account (`088 ********6789`) or a member's name (`김**`).
    pub counterparty: String,
    /// Why a failed transaction failed.
    pub failure_code: Option<String>,
    /// For an automatic top-up: the transaction it was made for.
    pub top_up_for: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

impl From<MoneyTx> for MoneyTxView {
    fn from(tx: MoneyTx) -> Self {
        let op = tx.operation;
        MoneyTxView {
            id: op.id.to_string(),
            kind: tx.kind.as_str(),
            state: op.state.as_str(),
            amount: op.amount.to_decimal_string(),
            currency: op.amount.currency().code(),
            counterparty: tx.counterparty,
            failure_code: op.failure_code,
            top_up_for: op.parent_id.map(|id| id.to_string()),
            created_at: format_micros(op.created_at),
        }
    }
}

/// What a money-moving request did.
#[derive(Debug, Serialize, ToSchema)]
pub struct MovementView {
    /// The movement asked for.
    pub transaction: MoneyTxView,
    /// The automatic top-up charged for it, if one was needed. It stays charged even when the
    /// movement is refused afterwards.
    pub top_up: Option<MoneyTxView>,
    /// The caller's wallet afterwards.
    pub balance: WalletView,
}

impl From<Movement> for MovementView {
    fn from(movement: Movement) -> Self {
        MovementView {
            transaction: movement.transaction.into(),
            top_up: movement.top_up.map(MoneyTxView::from),
            balance: movement.balance.into(),
        }
    }
}

/// One line of a wallet's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEntryView {
    /// The money transaction number (`mtx_…`); another id for an operator's ledger adjustment.
    pub id: String,
    /// `charge`, `withdrawal`, `payout`, `transfer_in`, `transfer_out` or `adjustment`.
    pub kind: &'static str,
    /// The other side, masked.
    pub counterparty: Option<String>,
    /// Signed: positive for money in, negative for money out.
    #[schema(example = "-3000")]
    pub amount: String,
    #[schema(example = "KRW")]
    pub currency: &'static str,
    /// The wallet's posted balance right after this entry.
    #[schema(example = "7000")]
    pub balance_after: String,
    /// RFC 3339.
    pub posted_at: String,
}

impl From<HistoryEntry> for HistoryEntryView {
    fn from(entry: HistoryEntry) -> Self {
        HistoryEntryView {
            id: entry.id,
            kind: entry.kind.as_str(),
            counterparty: entry.counterparty,
            amount: entry.amount.to_decimal_string(),
            currency: entry.amount.currency().code(),
            balance_after: entry.balance_after.to_decimal_string(),
            posted_at: format_micros(entry.posted_at),
        }
    }
}

/// A page of history, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryList {
    pub data: Vec<HistoryEntryView>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
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

/// A charge from a linked account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChargeBody {
    /// A positive whole number of won, as a string.
    #[schema(value_type = String, example = "10000")]
    pub amount: AmountInput,
    /// The linked account to collect from (`ba_…`); the member's default one when absent.
    pub bank_account_id: Option<String>,
}

/// A withdrawal to the member's own verified account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawBody {
    /// A positive whole number of won, as a string.
    #[schema(value_type = String, example = "10000")]
    pub amount: AmountInput,
    /// The linked account to pay to (`ba_…`); the member's default one when absent.
    pub bank_account_id: Option<String>,
}

/// A payout to any bank account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayoutBody {
    /// A positive whole number of won, as a string.
    #[schema(value_type = String, example = "10000")]
    pub amount: AmountInput,
    /// The recipient's bank, three digits.
    #[schema(example = "004")]
    pub bank_code: String,
    /// The recipient's account number; hyphens between digits are allowed.
    #[schema(example = "110-123-456789")]
    pub account_number: String,
    /// The name the account must be held in; the payout is refused with
    /// `holder_name_mismatch` (showing the actual name masked) when the bank says otherwise.
    #[schema(example = "홍길동")]
    pub holder_name: String,
    /// Charge the shortfall from the default linked account when the wallet is short
    /// (default true).
    pub auto_top_up: Option<bool>,
}

/// A transfer to another member.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    /// The recipient: exactly one of `member_id`, `email` or `phone`.
    pub to: RecipientBody,
    /// A positive amount, as a string in major units.
    #[schema(value_type = String, example = "3000")]
    pub amount: AmountInput,
    /// ISO 4217; wallets are kept in KRW.
    #[schema(value_type = String, example = "KRW")]
    pub currency: CurrencyInput,
    /// Charge the shortfall from the default linked account when the wallet is short
    /// (default true).
    pub auto_top_up: Option<bool>,
}

/// Who a transfer goes to.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecipientBody {
    /// A member id (`usr_…`).
    pub member_id: Option<String>,
    /// An active member's email address.
    pub email: Option<String>,
    /// An active member's phone number.
    pub phone: Option<String>,
}
