//! The JSON shapes of the linked-account routes. Account numbers appear in full only in
//! [`DisclosedView`] and [`ConsentSessionView`], the member's own linking, verification and
//! consent answers; every other shape carries `account_number_masked` alone.

use bank_accounts::{
    ConsentSession, Disclosed, LinkKind, LinkStatus, LinkedAccount, VerificationProgress,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::time::format_micros;
use crate::Secret;

/// An account to link: its bank and number.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// The bank's 3-digit standard code, e.g. `088` (Shinhan) or, for the partner account,
    /// the partner bank's code (`089` by default).
    #[schema(example = "088")]
    pub bank_code: String,
    /// 6 to 16 digits; hyphens between digits are accepted and dropped.
    #[schema(value_type = String, example = "110-123-456789")]
    pub account_number: Secret,
}

/// A code the member types: the 6 digits of the 1-won deposit's memo, or the 2 ARS digits.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// The digits, as a string (leading zeros count).
    #[schema(value_type = String, example = "482193")]
    pub code: Secret,
}

/// Actions that take no fields: an empty body or `{}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyRequest {}

/// Listing linked accounts.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Whose accounts: required for admin and platform keys; a member may only name themself.
    pub member_id: Option<String>,
    /// The `next_cursor` of the previous page.
    pub after: Option<String>,
    /// Page size, 1 to 100 (default 100).
    pub limit: Option<i64>,
}

/// Which process linked the account.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KindView {
    /// A charge account: any bank, several per member.
    Charge,
    /// The partner bank's account: one per member, one member per account.
    Partner,
}

/// Where a link stands.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusView {
    /// The 1-won deposit is being confirmed with the bank; reading the account again resolves it.
    DepositPending,
    /// The deposit arrived: type the code from its memo.
    AwaitingVerification,
    /// The account is the member's; withdrawals may go here.
    Verified,
    /// An ARS session for the debit consent is open.
    ConsentPending,
    /// The debit consent is registered: charges may collect from the account.
    Active,
    /// Unlinked by the member.
    Unlinked,
    /// The bank refused the 1-won deposit.
    Failed,
}

/// The 1-won verification, while it is not done.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerificationView {
    /// Whether the bank confirmed the deposit; `false` while its outcome is being resolved.
    pub deposited: bool,
    /// When the current code stops being accepted.
    pub expires_at: Option<String>,
    /// Attempts left for the current code.
    pub attempts_left: i64,
    /// How many more codes may be requested.
    pub resends_left: i64,
}

/// A linked account, its number masked.
#[derive(Debug, Serialize, ToSchema)]
pub struct BankAccountView {
    /// `ba_…`.
    #[schema(example = "ba_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B")]
    pub id: String,
    /// The member who linked it.
    pub member_id: String,
    pub kind: KindView,
    pub status: StatusView,
    #[schema(example = "088")]
    pub bank_code: String,
    /// The last four digits in a fixed shape.
    #[schema(example = "***-***-6789")]
    pub account_number_masked: String,
    /// The holder's name as the bank reported it, masked after the first character.
    #[schema(example = "김**")]
    pub holder_name_masked: String,
    /// Present while the 1-won verification is not done.
    pub verification: Option<VerificationView>,
    pub created_at: String,
    pub updated_at: String,
    pub verified_at: Option<String>,
    /// When the debit consent was registered.
    pub activated_at: Option<String>,
    /// When the link ended (unlinked, or the deposit refused).
    pub ended_at: Option<String>,
}

/// The answer of linking and verifying: the account with its number in full, for the member
/// to check which account they are confirming.
#[derive(Debug, Serialize, ToSchema)]
pub struct DisclosedView {
    #[serde(flatten)]
    pub bank_account: BankAccountView,
    /// The full account number, digits only.
    #[schema(example = "110123456789")]
    pub account_number: String,
}

/// An open ARS session: the member keys `ars_code` on the ARS call to consent to debits from
/// the account shown in full.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentSessionView {
    #[serde(flatten)]
    pub bank_account: BankAccountView,
    /// The full account number the consent is for.
    #[schema(example = "110123456789")]
    pub account_number: String,
    /// The two digits to key in on the ARS call.
    #[schema(example = "42")]
    pub ars_code: String,
    /// When the session closes.
    pub ars_expires_at: String,
}

/// A page of linked accounts.
#[derive(Debug, Serialize, ToSchema)]
pub struct BankAccountList {
    /// Live links, oldest first.
    pub data: Vec<BankAccountView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl From<LinkedAccount> for BankAccountView {
    fn from(account: LinkedAccount) -> BankAccountView {
        BankAccountView {
            id: account.id.to_string(),
            member_id: account.member_id.to_string(),
            kind: match account.kind {
                LinkKind::Charge => KindView::Charge,
                LinkKind::Partner => KindView::Partner,
            },
            status: match account.status {
                LinkStatus::DepositPending => StatusView::DepositPending,
                LinkStatus::AwaitingVerification => StatusView::AwaitingVerification,
                LinkStatus::Verified => StatusView::Verified,
                LinkStatus::ConsentPending => StatusView::ConsentPending,
                LinkStatus::Active => StatusView::Active,
                LinkStatus::Unlinked => StatusView::Unlinked,
                LinkStatus::Failed => StatusView::Failed,
            },
            bank_code: account.bank_code.to_string(),
            account_number_masked: account.account_number_masked,
            holder_name_masked: account.holder_name.masked(),
            verification: account.verification.map(VerificationView::from),
            created_at: format_micros(account.created_at),
            updated_at: format_micros(account.updated_at),
            verified_at: account.verified_at.map(format_micros),
            activated_at: account.activated_at.map(format_micros),
            ended_at: account.ended_at.map(format_micros),
        }
    }
}

impl From<VerificationProgress> for VerificationView {
    fn from(progress: VerificationProgress) -> VerificationView {
        VerificationView {
            deposited: progress.deposited,
            expires_at: progress.expires_at.map(format_micros),
            attempts_left: progress.attempts_left,
            resends_left: progress.resends_left,
        }
    }
}

impl From<Disclosed> for DisclosedView {
    fn from(disclosed: Disclosed) -> DisclosedView {
        DisclosedView {
            bank_account: disclosed.account.into(),
            account_number: disclosed.account_number.expose().to_owned(),
        }
    }
}

impl From<ConsentSession> for ConsentSessionView {
    fn from(session: ConsentSession) -> ConsentSessionView {
        ConsentSessionView {
            bank_account: session.account.into(),
            account_number: session.account_number.expose().to_owned(),
            ars_code: session.ars_code.expose().to_owned(),
            ars_expires_at: format_micros(session.expires_at),
        }
    }
}
