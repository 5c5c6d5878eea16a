//! The vocabulary of linked accounts: kinds, statuses, the codes members type, the name rule and
//! payer numbers. Each type is parsed once and holds only valid values.

use std::fmt;

use banking::PayerNumber;
use rand::Rng;

/// Which process an account was linked through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkKind {
    /// An account at any bank to charge from; a member may link several.
    Charge,
    /// The partner bank's account; one per member and one member per account.
    Partner,
}

impl LinkKind {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::Charge => "charge",
            LinkKind::Partner => "partner",
        }
    }

    pub(crate) fn from_db(value: &str) -> Option<LinkKind> {
        match value {
            "charge" => Some(LinkKind::Charge),
            "partner" => Some(LinkKind::Partner),
            _ => None,
        }
    }
}

/// Where a link stands. The order of the variants is the order of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkStatus {
    /// The 1-won deposit was sent and its outcome is not known yet.
    DepositPending,
    /// The deposit arrived; the member has to type the code from its memo.
    AwaitingVerification,
    /// The code matched: the member can read the account's statement. Payouts may go here.
    Verified,
    /// An ARS session for the debit consent is open (or confirmed and being registered).
    ConsentPending,
    /// The debit consent is registered at the bank: charges may collect from the account.
    Active,
    /// Ended by the member (and the consent revoked).
    Unlinked,
    /// The bank refused the 1-won deposit; nothing moved.
    Failed,
}

impl LinkStatus {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkStatus::DepositPending => "deposit_pending",
            LinkStatus::AwaitingVerification => "awaiting_verification",
            LinkStatus::Verified => "verified",
            LinkStatus::ConsentPending => "consent_pending",
            LinkStatus::Active => "active",
            LinkStatus::Unlinked => "unlinked",
            LinkStatus::Failed => "failed",
        }
    }

    pub(crate) fn from_db(value: &str) -> Option<LinkStatus> {
        [
            LinkStatus::DepositPending,
            LinkStatus::AwaitingVerification,
            LinkStatus::Verified,
            LinkStatus::ConsentPending,
            LinkStatus::Active,
            LinkStatus::Unlinked,
            LinkStatus::Failed,
        ]
        .into_iter()
        .find(|status| status.as_str() == value)
    }

    /// Whether the member proved they can read the account (the 1-won code matched).
    pub fn is_verified(self) -> bool {
        matches!(
            self,
            LinkStatus::Verified | LinkStatus::ConsentPending | LinkStatus::Active
        )
    }

    /// Whether the link has ended and is kept only as history.
    pub fn is_ended(self) -> bool {
        matches!(self, LinkStatus::Unlinked | LinkStatus::Failed)
    }
}

/// Digits in a micro-deposit's code. Six digits make five guesses a 1-in-200,000 chance.
pub const VERIFICATION_CODE_DIGITS: usize = 6;
/// Digits in an ARS code: two, as ARS prompts read them out and the member keys them.
pub const ARS_CODE_DIGITS: usize = 2;

/// A code the member reads (from a deposit's memo) or keys (on the ARS call): a fixed number of
/// ASCII digits. `Debug` hides it: a code is a one-time secret until it is used.
#[derive(Clone, PartialEq, Eq)]
pub struct DigitCode(String);

impl DigitCode {
    /// A random code of `digits` digits, leading zeros included.
    pub fn generate(digits: usize) -> DigitCode {
        let mut rng = rand::rng();
        DigitCode(
            (0..digits)
                .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
                .collect(),
        )
    }

    /// Parses exactly `digits` ASCII digits; surrounding whitespace is ignored.
    pub fn parse(value: &str, digits: usize) -> Option<DigitCode> {
        let value = value.trim();
        (value.len() == digits && value.bytes().all(|b| b.is_ascii_digit()))
            .then(|| DigitCode(value.to_owned()))
    }

    /// The digits, to print in a memo, show to the member or digest.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DigitCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DigitCode(***)")
    }
}

/// The memo prefix of a micro-deposit; the code follows after a space (`MYPAY 482193`).
pub const DEPOSIT_MEMO_PREFIX: &str = "MYPAY";

/// Whether the holder name the bank reported is the member's name.
///
/// Banks print names their own way: with or without the space between family and given name,
/// Latin names in capitals. So every whitespace character is dropped and letters are compared
/// case-insensitively (Unicode lower case); nothing else is folded. Hangul has no case, so
/// Korean names must match exactly, syllable for syllable.
pub fn names_match(member_name: &str, holder_name: &str) -> bool {
    fn fold(name: &str) -> String {
        name.chars()
            .filter(|c| !c.is_whitespace())
            .flat_map(char::to_lowercase)
            .collect()
    }
    let member = fold(member_name);
    !member.is_empty() && member == fold(holder_name)
}

/// Characters of a payer number after its prefix: Crockford base32, 16 of them (80 random bits).
const PAYER_NUMBER_RANDOM_CHARS: usize = 16;
/// What every payer number the platform issues starts with.
const PAYER_NUMBER_PREFIX: &str = "MP";
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A new payer number (납부자번호) for a debit consent: `MP` and 16 random Crockford base32
/// characters, 18 in all (the bank allows 20). Uniqueness is enforced by the database; 80
/// random bits make a collision a matter of astronomy, not of retry logic.
pub fn generate_payer_number() -> PayerNumber {
    let mut rng = rand::rng();
    let random: String = (0..PAYER_NUMBER_RANDOM_CHARS)
        .map(|_| char::from(CROCKFORD[rng.random_range(0..CROCKFORD.len())]))
        .collect();
    PayerNumber::parse(&format!("{PAYER_NUMBER_PREFIX}{random}"))
        .expect("18 ASCII letters and digits are a valid payer number")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_kinds_round_trip_through_storage() {
        for status in [
            LinkStatus::DepositPending,
            LinkStatus::AwaitingVerification,
            LinkStatus::Verified,
            LinkStatus::ConsentPending,
            LinkStatus::Active,
            LinkStatus::Unlinked,
            LinkStatus::Failed,
        ] {
            assert_eq!(LinkStatus::from_db(status.as_str()), Some(status));
        }
        assert_eq!(LinkStatus::from_db("gone"), None);
        assert!(
            LinkStatus::Active.is_verified() && !LinkStatus::AwaitingVerification.is_verified()
        );
        assert!(LinkStatus::Failed.is_ended() && !LinkStatus::Active.is_ended());
        for kind in [LinkKind::Charge, LinkKind::Partner] {
            assert_eq!(LinkKind::from_db(kind.as_str()), Some(kind));
        }
    }

    #[test]
    fn codes_have_exactly_their_digits_and_never_print() {
        for _ in 0..100 {
            let code = DigitCode::generate(VERIFICATION_CODE_DIGITS);
            assert_eq!(code.expose().len(), 6);
            assert_eq!(DigitCode::parse(code.expose(), 6), Some(code));
        }
        assert_eq!(DigitCode::parse(" 012345 ", 6).unwrap().expose(), "012345");
        for bad in ["", "12345", "1234567", "12a456", "１２３４５６", "12 456"] {
            assert_eq!(DigitCode::parse(bad, 6), None, "{bad:?}");
        }
        assert_eq!(format!("{:?}", DigitCode::generate(2)), "DigitCode(***)");
    }

    #[test]
    fn names_match_ignoring_whitespace_and_latin_case() {
        assert!(names_match("김민수", "김민수"));
        assert!(names_match("김 민수", " 김민수 "));
        assert!(names_match("Kim Minsu", "KIM MINSU"));
        assert!(names_match("kim\u{3000}minsu", "KIMMINSU"));
        assert!(!names_match("김민수", "김민서"));
        assert!(!names_match("김민수", "(주)김민수"));
        assert!(!names_match("   ", "   "));
    }

    #[test]
    fn payer_numbers_are_prefixed_random_and_valid() {
        let a = generate_payer_number();
        let b = generate_payer_number();
        assert_eq!(a.as_str().len(), 18);
        assert!(a.as_str().starts_with("MP"));
        assert_ne!(a, b);
    }
}
