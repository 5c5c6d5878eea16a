//! Linked accounts as the service hands them out, and what the wallet asks for.

use banking::{AccountNumber, BankCode, HolderName};
use ledger::Micros;
use membership::MemberId;

use crate::domain::{DigitCode, LinkKind, LinkStatus};
use crate::id::BankAccountId;

/// A linked account with its number masked: what every list and read shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedAccount {
    pub id: BankAccountId,
    pub member_id: MemberId,
    pub kind: LinkKind,
    pub status: LinkStatus,
    pub bank_code: BankCode,
    /// `***-***-1234`: the last four digits in a fixed shape, so that not even the number's
    /// length shows.
    pub account_number_masked: String,
    pub holder_name: HolderName,
    /// Where the 1-won verification stands, while it is not done.
    pub verification: Option<VerificationProgress>,
    pub created_at: Micros,
    pub updated_at: Micros,
    pub verified_at: Option<Micros>,
    pub activated_at: Option<Micros>,
    pub ended_at: Option<Micros>,
}

/// The state of the code the member is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationProgress {
    /// Whether the bank has confirmed the 1-won deposit (`false` while it is being resolved).
    pub deposited: bool,
    /// When the current code stops being accepted (set once the deposit arrived).
    pub expires_at: Option<Micros>,
    /// Attempts left for the current code.
    pub attempts_left: i64,
    /// How many more codes may be sent (resends) for this link.
    pub resends_left: i64,
}

/// A linked account with its full number: only for the member's own linking, verification and
/// consent steps, where the member must see which account they are confirming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disclosed {
    pub account: LinkedAccount,
    pub account_number: AccountNumber,
}

/// An open ARS session for a debit consent: the code to key in on the call, and the account in
/// full (the seed's rule: the account number is shown unmasked at consent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentSession {
    pub account: LinkedAccount,
    pub account_number: AccountNumber,
    pub ars_code: DigitCode,
    pub expires_at: Micros,
}

/// The masked form of an account number from its last four digits.
pub(crate) fn masked(last4: &str) -> String {
    format!("***-***-{last4}")
}

/// The last four digits, kept in the clear for masking.
pub(crate) fn last4(number: &AccountNumber) -> String {
    let digits = number.expose();
    digits[digits.len() - 4..].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_show_only_the_last_four_digits_in_a_fixed_shape() {
        let number = AccountNumber::parse("110-123-456789").unwrap();
        assert_eq!(last4(&number), "6789");
        assert_eq!(masked(&last4(&number)), "***-***-6789");
        let short = AccountNumber::parse("123456").unwrap();
        assert_eq!(masked(&last4(&short)), "***-***-3456");
    }
}
