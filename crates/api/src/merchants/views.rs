//! The JSON shapes of the merchant routes. Settlement account numbers come in once (onboarding
//! or a change) and go out only masked; no shape carries an amount.

use merchants::{Merchant, MerchantError, MerchantStatus, SettlementAccount};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::time::format_micros;
use crate::Secret;

/// A settlement account and the name it must be held in.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettlementAccountBody {
    /// The bank's 3-digit standard code.
    #[schema(example = "088")]
    pub bank_code: String,
    /// 6 to 16 digits; hyphens between digits are accepted and dropped.
    #[schema(value_type = String, example = "110-123-456789")]
    pub account_number: Secret,
    /// Whom the account must be held by, as the bank prints it (spaces and Latin letter case
    /// aside); the bank's answer is checked against it.
    #[schema(example = "(주)마이커피")]
    pub holder_name: String,
}

/// Onboarding a merchant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OnboardBody {
    /// 1 to 100 characters.
    #[schema(example = "마이커피 강남점")]
    pub name: String,
    /// The fee rate in basis points: a JSON integer from 0 to 10000 (250 is 2.5 %).
    #[schema(value_type = u32, minimum = 0, maximum = 10000, example = 250)]
    pub fee_bps: Value,
    /// Where settlements are paid.
    pub settlement_account: SettlementAccountBody,
}

/// A change to a merchant; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    /// 1 to 100 characters.
    pub name: Option<String>,
    /// A JSON integer from 0 to 10000; applies to payments made after the change.
    #[schema(value_type = Option<u32>, minimum = 0, maximum = 10000, example = 300)]
    pub fee_bps: Option<Value>,
    /// `suspended` stops new payments; `active` resumes them.
    pub status: Option<StatusView>,
}

/// A key for a merchant's server.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MerchantKeyBody {
    /// A label for operators, such as the merchant's system that uses the key.
    #[schema(example = "shop-backend")]
    pub name: String,
}

/// Paging through merchants.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// The `next_cursor` of the previous page.
    pub after: Option<String>,
    /// Page size, 1 to 500 (default 100).
    pub limit: Option<i64>,
}

/// Whether a merchant takes payments.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusView {
    /// Takes payments.
    Active,
    /// Takes no new payments; what it is owed is untouched.
    Suspended,
}

/// A settlement account, masked.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettlementAccountView {
    #[schema(example = "088")]
    pub bank_code: String,
    /// The last four digits in a fixed shape.
    #[schema(example = "***-***-6789")]
    pub account_number_masked: String,
    /// The holder's name as the bank reported it, masked after the first character.
    #[schema(example = "(******")]
    pub holder_name_masked: String,
}

/// A merchant.
#[derive(Debug, Serialize, ToSchema)]
pub struct MerchantView {
    /// `mer_…`.
    #[schema(example = "mer_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B")]
    pub id: String,
    pub name: String,
    pub status: StatusView,
    /// The fee rate in basis points (250 is 2.5 %).
    #[schema(example = 250)]
    pub fee_bps: u32,
    pub settlement_account: SettlementAccountView,
    pub created_at: String,
    pub updated_at: String,
}

/// A page of merchants.
#[derive(Debug, Serialize, ToSchema)]
pub struct MerchantList {
    /// Merchants in onboarding order.
    pub data: Vec<MerchantView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A fee rate as sent: only a JSON integer counts, so `2.5`, `"250"` and `250.0` are refused
/// like an out-of-range rate instead of being rounded or parsed.
pub fn fee_bps(value: &Value) -> Result<u32, MerchantError> {
    value
        .as_u64()
        .and_then(|bps| u32::try_from(bps).ok())
        .ok_or(MerchantError::FeeInvalid)
}

impl From<StatusView> for MerchantStatus {
    fn from(status: StatusView) -> MerchantStatus {
        match status {
            StatusView::Active => MerchantStatus::Active,
            StatusView::Suspended => MerchantStatus::Suspended,
        }
    }
}

impl From<SettlementAccount> for SettlementAccountView {
    fn from(account: SettlementAccount) -> SettlementAccountView {
        SettlementAccountView {
            bank_code: account.bank_code.to_string(),
            account_number_masked: account.account_number_masked,
            holder_name_masked: account.holder_name_masked,
        }
    }
}

impl From<Merchant> for MerchantView {
    fn from(merchant: Merchant) -> MerchantView {
        MerchantView {
            id: merchant.id.to_string(),
            name: merchant.name,
            status: match merchant.status {
                MerchantStatus::Active => StatusView::Active,
                MerchantStatus::Suspended => StatusView::Suspended,
            },
            fee_bps: merchant.fee_bps,
            settlement_account: merchant.settlement.into(),
            created_at: format_micros(merchant.created_at),
            updated_at: format_micros(merchant.updated_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_json_integers_are_fee_rates() {
        assert_eq!(fee_bps(&json!(0)).unwrap(), 0);
        assert_eq!(fee_bps(&json!(250)).unwrap(), 250);
        assert_eq!(
            fee_bps(&json!(10001)).unwrap(),
            10001,
            "the range is the service's"
        );
        for bad in [
            json!(2.5),
            json!(250.0),
            json!(-1),
            json!("250"),
            json!(null),
            json!(5_000_000_000u64),
        ] {
            assert!(fee_bps(&bad).is_err(), "{bad}");
        }
    }
}
