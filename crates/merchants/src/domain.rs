//! The merchant vocabulary: statuses, fee rates, names, the settlement account as read, the
//! ledger accounts a merchant owns, and what onboarding and a change ask for.

use banking::{BankAccount, BankCode, HolderName};
use ledger::{AccountFlags, Micros};
use money::Currency;
use wallet::RequestKey;

use crate::error::MerchantError;
use crate::id::MerchantId;

/// The highest fee rate: 10,000 basis points, the whole payment.
pub const FEE_BPS_MAX: u32 = 10_000;
/// The longest merchant name, in characters.
pub const MERCHANT_NAME_CHARS_MAX: usize = 100;

/// Whether a merchant may take new payments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MerchantStatus {
    /// Takes payments.
    Active,
    /// Takes no new payments. Money the merchant is already owed, and its refunds, are not
    /// affected: suspension stops new business, it does not freeze what exists.
    Suspended,
}

impl MerchantStatus {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            MerchantStatus::Active => "active",
            MerchantStatus::Suspended => "suspended",
        }
    }

    pub(crate) fn from_db(value: &str) -> Option<MerchantStatus> {
        match value {
            "active" => Some(MerchantStatus::Active),
            "suspended" => Some(MerchantStatus::Suspended),
            _ => None,
        }
    }
}

/// The settlement account as every read shows it: the number and the holder's name masked.
/// The full account leaves the crate only through [`crate::Merchants::settlement_target`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementAccount {
    pub bank_code: BankCode,
    /// `***-***-1234`: the last four digits in a fixed shape, so not even the length shows.
    pub account_number_masked: String,
    /// The holder name the bank reported, masked after its first character (`(**********`).
    pub holder_name_masked: String,
}

/// A merchant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merchant {
    pub id: MerchantId,
    pub name: String,
    pub status: MerchantStatus,
    /// The fee rate in basis points (1/100 of a percent), 0 to [`FEE_BPS_MAX`].
    pub fee_bps: u32,
    pub settlement: SettlementAccount,
    pub created_at: Micros,
    pub updated_at: Micros,
}

impl Merchant {
    /// Whether the merchant may take new payments.
    pub fn is_active(&self) -> bool {
        self.status == MerchantStatus::Active
    }
}

/// What onboarding a merchant takes.
#[derive(Debug, Clone)]
pub struct NewMerchant {
    pub name: String,
    pub fee_bps: u32,
    /// The account settlements are paid to.
    pub account: BankAccount,
    /// Whom the caller expects the account to be held by; the bank's answer must match.
    pub holder_name: HolderName,
    /// The caller's Idempotency-Key, if it sent one: a retry with the same key and request
    /// finds the merchant the first attempt onboarded, even after the HTTP layer forgot it.
    pub request_key: Option<RequestKey>,
}

/// A change to a merchant; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MerchantPatch {
    pub name: Option<String>,
    pub fee_bps: Option<u32>,
    pub status: Option<MerchantStatus>,
}

/// Which of a merchant's ledger accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MerchantAccount {
    /// What the platform owes the merchant, settled to its bank account net of fees. It may go
    /// negative: a refund after the money was settled leaves the merchant owing the platform,
    /// to be taken from its next settlement.
    Payable,
    /// Money held for the merchant until the buyer confirms (marketplace escrow). It must not
    /// go negative: nothing can be released from escrow that was not held there.
    Escrow,
}

impl MerchantAccount {
    /// The purpose as it appears in the account code.
    pub fn as_str(self) -> &'static str {
        match self {
            MerchantAccount::Payable => "payable",
            MerchantAccount::Escrow => "escrow",
        }
    }

    /// The ledger account code: `liability:merchant:{id}:{purpose}:{CUR}`.
    pub fn code(self, merchant: &MerchantId, currency: Currency) -> String {
        format!(
            "liability:merchant:{}:{}:{}",
            merchant.as_str(),
            self.as_str(),
            currency.code()
        )
    }

    /// The flags the account is opened with.
    pub fn flags(self) -> AccountFlags {
        match self {
            MerchantAccount::Payable => AccountFlags::empty(),
            MerchantAccount::Escrow => AccountFlags::MUST_NOT_GO_NEGATIVE,
        }
    }
}

/// Checks a fee rate: an integer number of basis points, at most the whole payment.
pub fn check_fee_bps(fee_bps: u32) -> Result<u32, MerchantError> {
    if fee_bps <= FEE_BPS_MAX {
        Ok(fee_bps)
    } else {
        Err(MerchantError::FeeInvalid)
    }
}

/// Checks and trims a merchant name: 1 to 100 characters after trimming, no control
/// characters (they would garble listings and statements).
pub fn check_name(name: &str) -> Result<String, MerchantError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(MerchantError::NameInvalid("must not be empty"));
    }
    if name.chars().count() > MERCHANT_NAME_CHARS_MAX {
        return Err(MerchantError::NameInvalid("must be at most 100 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(MerchantError::NameInvalid(
            "must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_storage() {
        for status in [MerchantStatus::Active, MerchantStatus::Suspended] {
            assert_eq!(MerchantStatus::from_db(status.as_str()), Some(status));
        }
        assert_eq!(MerchantStatus::from_db("closed"), None);
    }

    #[test]
    fn fee_rates_are_whole_basis_points_up_to_the_whole_payment() {
        assert_eq!(check_fee_bps(0).unwrap(), 0);
        assert_eq!(check_fee_bps(250).unwrap(), 250);
        assert_eq!(check_fee_bps(10_000).unwrap(), 10_000);
        assert!(matches!(
            check_fee_bps(10_001),
            Err(MerchantError::FeeInvalid)
        ));
        assert!(matches!(
            check_fee_bps(u32::MAX),
            Err(MerchantError::FeeInvalid)
        ));
    }

    #[test]
    fn names_are_trimmed_bounded_and_printable() {
        assert_eq!(check_name("  마이커피 강남점 ").unwrap(), "마이커피 강남점");
        assert_eq!(check_name(&"가".repeat(100)).unwrap().chars().count(), 100);
        for bad in ["", "   ", "a\nb", "tab\there"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name(&"가".repeat(101)).is_err());
    }

    #[test]
    fn ledger_accounts_are_named_per_merchant_purpose_and_currency() {
        let id = MerchantId::parse("mer_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B").unwrap();
        assert_eq!(
            MerchantAccount::Payable.code(&id, Currency::KRW),
            "liability:merchant:mer_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B:payable:KRW"
        );
        assert_eq!(
            MerchantAccount::Escrow.code(&id, Currency::USD),
            "liability:merchant:mer_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B:escrow:USD"
        );
        assert!(MerchantAccount::Escrow
            .flags()
            .contains(AccountFlags::MUST_NOT_GO_NEGATIVE));
        assert!(!MerchantAccount::Payable
            .flags()
            .contains(AccountFlags::MUST_NOT_GO_NEGATIVE));
    }

    #[test]
    fn only_active_merchants_take_payments() {
        let mut merchant = Merchant {
            id: MerchantId::generate(),
            name: "shop".into(),
            status: MerchantStatus::Active,
            fee_bps: 250,
            settlement: SettlementAccount {
                bank_code: BankCode::parse("088").unwrap(),
                account_number_masked: "***-***-1234".into(),
                holder_name_masked: "(******".into(),
            },
            created_at: 0,
            updated_at: 0,
        };
        assert!(merchant.is_active());
        merchant.status = MerchantStatus::Suspended;
        assert!(!merchant.is_active());
    }
}
