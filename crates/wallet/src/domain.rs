//! The wallet's vocabulary: money transaction numbers, what a movement is, the limits and the
//! auto top-up rule, each with its tests.

use money::{Currency, Money};

use crate::WalletError;

ids::ulid_id!(
    /// A money transaction number (머니 거래번호): `mtx_` followed by a ULID. It is also the id
    /// of the ledger transaction that moves the money, so the two are found by one number.
    MoneyTxId,
    "mtx_"
);

impl MoneyTxId {
    /// The ledger transaction id the movement is posted under.
    pub fn transaction_id(&self) -> ledger::TransactionId {
        ledger::TransactionId::parse(self.as_str()).expect("an mtx id is a valid ledger id")
    }

    /// The ledger hold that reserves the money of a bank-backed movement while it is in flight.
    pub fn hold_id(&self) -> ledger::HoldId {
        ledger::HoldId::parse(&format!("{}.hold", self.as_str())).expect("a valid ledger id")
    }
}

/// What a money transaction did, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    /// Money collected from the member's linked account into the wallet.
    Charge,
    /// Money paid out to the member's own verified account.
    Withdrawal,
    /// Money paid out to any bank account, after a holder-name check.
    Payout,
    /// Money moved from one member's wallet to another's.
    Transfer,
    /// Money paid to a merchant at checkout: held while the payment order executes, taken
    /// when it succeeds. The payments service, not the wallet's resolver, finishes it.
    Payment,
    /// Money a merchant gave back from a payment, credited by the refund's ledger transaction.
    Refund,
}

impl OperationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OperationKind::Charge => "charge",
            OperationKind::Withdrawal => "withdrawal",
            OperationKind::Payout => "payout",
            OperationKind::Transfer => "transfer",
            OperationKind::Payment => "payment",
            OperationKind::Refund => "refund",
        }
    }

    pub(crate) fn from_db(value: &str) -> Result<OperationKind, WalletError> {
        match value {
            "charge" => Ok(OperationKind::Charge),
            "withdrawal" => Ok(OperationKind::Withdrawal),
            "payout" => Ok(OperationKind::Payout),
            "transfer" => Ok(OperationKind::Transfer),
            "payment" => Ok(OperationKind::Payment),
            "refund" => Ok(OperationKind::Refund),
            other => Err(WalletError::Internal(format!(
                "unknown operation kind {other:?}"
            ))),
        }
    }
}

/// Where a money transaction is. A bank-backed one stays `Pending` while its transfer's
/// outcome is unknown; a transfer between members is `Succeeded` when it exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationState {
    Pending,
    Succeeded,
    Failed,
}

impl OperationState {
    pub fn as_str(self) -> &'static str {
        match self {
            OperationState::Pending => "pending",
            OperationState::Succeeded => "succeeded",
            OperationState::Failed => "failed",
        }
    }

    pub(crate) fn from_db(value: &str) -> Result<OperationState, WalletError> {
        match value {
            "pending" => Ok(OperationState::Pending),
            "succeeded" => Ok(OperationState::Succeeded),
            "failed" => Ok(OperationState::Failed),
            other => Err(WalletError::Internal(format!(
                "unknown operation state {other:?}"
            ))),
        }
    }
}

/// How a movement appears in one wallet's history: a transfer is `transfer_out` for the sender
/// and `transfer_in` for the recipient; ledger postings made outside the wallet service (an
/// operator's correction) are `adjustment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Charge,
    Withdrawal,
    Payout,
    TransferIn,
    TransferOut,
    Payment,
    Refund,
    Adjustment,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Charge => "charge",
            EntryKind::Withdrawal => "withdrawal",
            EntryKind::Payout => "payout",
            EntryKind::TransferIn => "transfer_in",
            EntryKind::TransferOut => "transfer_out",
            EntryKind::Payment => "payment",
            EntryKind::Refund => "refund",
            EntryKind::Adjustment => "adjustment",
        }
    }
}

/// Which configured limit a movement would break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// The most a wallet may hold, counting charges still in flight.
    MaxBalance,
    /// The most one charge, withdrawal, payout or transfer may move.
    PerTransaction,
    /// The most a member may charge in one KST day.
    DailyCharge,
    /// The most a member may send out (withdrawals, payouts, transfers) in one KST day.
    DailyOutgoing,
}

impl LimitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::MaxBalance => "max_balance",
            LimitKind::PerTransaction => "per_transaction",
            LimitKind::DailyCharge => "daily_charge",
            LimitKind::DailyOutgoing => "daily_outgoing",
        }
    }
}

/// The daily counters, as stored in `wallet_daily_usage.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UsageKind {
    Charge,
    Outgoing,
}

impl UsageKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            UsageKind::Charge => "charge",
            UsageKind::Outgoing => "outgoing",
        }
    }

    pub(crate) fn limit(self) -> LimitKind {
        match self {
            UsageKind::Charge => LimitKind::DailyCharge,
            UsageKind::Outgoing => LimitKind::DailyOutgoing,
        }
    }
}

/// The limits of Korean prepaid money (선불전자지급수단) by default: a wallet holds at most
/// 2,000,000 won, and a member charges and sends at most that much per transaction and per day.
pub const MAX_BALANCE_WON_DEFAULT: i64 = 2_000_000;
pub const PER_TRANSACTION_WON_DEFAULT: i64 = 2_000_000;
pub const DAILY_CHARGE_WON_DEFAULT: i64 = 2_000_000;
pub const DAILY_OUTGOING_WON_DEFAULT: i64 = 2_000_000;
/// Auto top-up charges the shortfall rounded up to this many won.
pub const AUTO_TOP_UP_UNIT_WON_DEFAULT: i64 = 10_000;
/// The largest value any limit or the top-up unit may be set to: what one bank transfer may move.
pub const LIMIT_WON_MAX: i64 = banking::TRANSFER_AMOUNT_WON_MAX;

/// The wallet's limits, in won. Every value is between 1 and [`LIMIT_WON_MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_balance: i64,
    pub per_transaction: i64,
    pub daily_charge: i64,
    pub daily_outgoing: i64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_balance: MAX_BALANCE_WON_DEFAULT,
            per_transaction: PER_TRANSACTION_WON_DEFAULT,
            daily_charge: DAILY_CHARGE_WON_DEFAULT,
            daily_outgoing: DAILY_OUTGOING_WON_DEFAULT,
        }
    }
}

impl Limits {
    pub(crate) fn of(&self, kind: LimitKind) -> i64 {
        match kind {
            LimitKind::MaxBalance => self.max_balance,
            LimitKind::PerTransaction => self.per_transaction,
            LimitKind::DailyCharge => self.daily_charge,
            LimitKind::DailyOutgoing => self.daily_outgoing,
        }
    }
}

/// Tunables of the wallet service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalletConfig {
    pub limits: Limits,
    /// Auto top-up rounds the shortfall up to a multiple of this, in won.
    pub auto_top_up_unit: i64,
}

impl Default for WalletConfig {
    fn default() -> WalletConfig {
        WalletConfig {
            limits: Limits::default(),
            auto_top_up_unit: AUTO_TOP_UP_UNIT_WON_DEFAULT,
        }
    }
}

impl WalletConfig {
    /// Refuses values outside 1..=[`LIMIT_WON_MAX`], naming the setting.
    pub fn validate(&self) -> Result<(), String> {
        let settings = [
            ("max balance", self.limits.max_balance),
            ("per-transaction limit", self.limits.per_transaction),
            ("daily charge limit", self.limits.daily_charge),
            ("daily outgoing limit", self.limits.daily_outgoing),
            ("auto top-up unit", self.auto_top_up_unit),
        ];
        match settings
            .iter()
            .find(|(_, value)| !(1..=LIMIT_WON_MAX).contains(value))
        {
            Some((name, _)) => Err(format!(
                "the {name} must be between 1 and {LIMIT_WON_MAX} won"
            )),
            None => Ok(()),
        }
    }
}

/// What auto top-up charges for a shortfall: the shortfall rounded up to a whole number of
/// units (3,500 short with a 10,000 unit charges 10,000; 10,001 short charges 20,000).
pub fn top_up_amount(shortfall: i64, unit: i64) -> Result<i64, WalletError> {
    if shortfall <= 0 || unit <= 0 {
        return Err(WalletError::Internal(
            "a top-up needs a positive shortfall and unit".into(),
        ));
    }
    let units = shortfall
        .checked_add(unit - 1)
        .ok_or(WalletError::AmountOutOfRange)?
        / unit;
    units.checked_mul(unit).ok_or(WalletError::AmountOutOfRange)
}

/// Wallets hold these currencies; banks move KRW only, so KRW is the one for now.
pub const WALLET_CURRENCIES: [Currency; 1] = [Currency::KRW];

/// Refuses a currency no wallet is kept in.
pub fn wallet_currency(currency: Currency) -> Result<Currency, WalletError> {
    if WALLET_CURRENCIES.contains(&currency) {
        Ok(currency)
    } else {
        Err(WalletError::CurrencyUnsupported(currency.code()))
    }
}

/// A member's name as the other side of a transfer sees it: the first character, then `*`.
pub fn mask_name(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => std::iter::once(first).chain(chars.map(|_| '*')).collect(),
        None => String::new(),
    }
}

/// A bank account as shown in histories: bank code and masked number, e.g. `088 ********5678`.
pub fn account_label(account: &banking::BankAccount) -> String {
    format!(
        "{} {}",
        account.bank_code.as_str(),
        account.account_number.masked()
    )
}

/// Checks that an amount is positive, in a wallet currency and within one bank transfer.
pub(crate) fn positive_amount(amount: Money) -> Result<Money, WalletError> {
    wallet_currency(amount.currency())?;
    if !amount.is_positive() {
        return Err(WalletError::AmountInvalid);
    }
    if amount.minor() > LIMIT_WON_MAX {
        return Err(WalletError::AmountOutOfRange);
    }
    Ok(amount)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_tx_ids_are_mtx_ulids_and_name_their_ledger_records() {
        let id = MoneyTxId::generate();
        assert!(id.as_str().starts_with("mtx_"));
        assert_eq!(MoneyTxId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(id.transaction_id().as_str(), id.as_str());
        assert_eq!(id.hold_id().as_str(), format!("{id}.hold"));
        for bad in ["", "mtx_", "mtx_x", "ltx_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B"] {
            assert_eq!(MoneyTxId::parse(bad), None, "{bad}");
        }
        let lower = format!("mtx_{}", ulid::Ulid::new().to_string().to_lowercase());
        assert_eq!(MoneyTxId::parse(&lower), None, "only the canonical form");
    }

    #[test]
    fn top_ups_round_the_shortfall_up_to_whole_units() {
        assert_eq!(top_up_amount(3_500, 10_000).unwrap(), 10_000);
        assert_eq!(top_up_amount(10_000, 10_000).unwrap(), 10_000);
        assert_eq!(top_up_amount(10_001, 10_000).unwrap(), 20_000);
        assert_eq!(top_up_amount(1, 1).unwrap(), 1);
        assert_eq!(top_up_amount(7, 5).unwrap(), 10);
        assert_eq!(
            top_up_amount(i64::MAX, 10).unwrap_err().code(),
            "amount_out_of_range"
        );
        assert!(top_up_amount(0, 10_000).is_err());
    }

    #[test]
    fn configuration_is_bounded() {
        assert!(WalletConfig::default().validate().is_ok());
        let config = WalletConfig {
            auto_top_up_unit: 0,
            ..WalletConfig::default()
        };
        assert!(config.validate().unwrap_err().contains("top-up unit"));
        let config = WalletConfig {
            limits: Limits {
                daily_outgoing: LIMIT_WON_MAX + 1,
                ..Limits::default()
            },
            ..WalletConfig::default()
        };
        assert!(config.validate().unwrap_err().contains("daily outgoing"));
    }

    #[test]
    fn amounts_are_positive_krw_within_a_bank_transfer() {
        assert!(positive_amount(Money::from_minor(1, Currency::KRW)).is_ok());
        assert_eq!(
            positive_amount(Money::from_minor(0, Currency::KRW))
                .unwrap_err()
                .code(),
            "amount_invalid"
        );
        assert_eq!(
            positive_amount(Money::from_minor(100, Currency::USD))
                .unwrap_err()
                .code(),
            "currency_unsupported"
        );
        assert_eq!(
            positive_amount(Money::from_minor(LIMIT_WON_MAX + 1, Currency::KRW))
                .unwrap_err()
                .code(),
            "amount_out_of_range"
        );
    }

    #[test]
    fn names_and_accounts_are_masked() {
        assert_eq!(mask_name("김민수"), "김**");
        assert_eq!(mask_name("A"), "A");
        let account = banking::BankAccount::new(
            banking::BankCode::parse("088").unwrap(),
            banking::AccountNumber::parse("110123456789").unwrap(),
        );
        let label = account_label(&account);
        assert!(label.starts_with("088 "), "{label}");
        assert!(!label.contains("110123456789"), "{label}");
    }
}
