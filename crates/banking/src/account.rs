//! Who holds money at a bank: bank codes, account numbers, holder names and the payer numbers
//! that debit consents are registered under.
//!
//! Each type is parsed once at the boundary and cannot hold an invalid value afterwards. Account
//! numbers and holder names are personal data: their `Debug` forms are masked, they have no
//! `Display` and no `Serialize`, so that neither a log line nor a JSON body can carry them by
//! accident; code that must send one to a bank asks for it with `expose()`.

use std::fmt;

use crate::error::InvalidValue;

/// A bank's 3-digit standard code (은행 표준코드), e.g. `088` for Shinhan Bank or `004` for
/// KB Kookmin Bank.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BankCode([u8; 3]);

impl BankCode {
    /// Parses exactly three ASCII digits.
    pub fn parse(value: &str) -> Result<BankCode, InvalidValue> {
        let bytes: [u8; 3] = value
            .as_bytes()
            .try_into()
            .map_err(|_| InvalidValue::new("bank_code", "must be exactly 3 digits"))?;
        if !bytes.iter().all(u8::is_ascii_digit) {
            return Err(InvalidValue::new("bank_code", "must be exactly 3 digits"));
        }
        Ok(BankCode(bytes))
    }

    /// The code as sent to the bank, e.g. `"088"`.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("a bank code holds only ASCII digits")
    }
}

impl fmt::Display for BankCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for BankCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BankCode({})", self.as_str())
    }
}

/// The fewest digits a Korean bank account number has.
pub const ACCOUNT_NUMBER_DIGITS_MIN: usize = 6;
/// The most digits a Korean bank account number has.
pub const ACCOUNT_NUMBER_DIGITS_MAX: usize = 16;
/// How many trailing digits the masked form shows.
const ACCOUNT_NUMBER_VISIBLE_DIGITS: usize = 4;

/// A bank account number: 6 to 16 digits, stored without separators.
///
/// Users type numbers with hyphens as their bank prints them (`110-123-456789`), so hyphens
/// are accepted between digits and dropped; every other character is refused. The number never
/// appears in `Debug` output, only its masked form (`********6789`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AccountNumber(String);

impl AccountNumber {
    /// Parses digits, optionally grouped by single hyphens.
    pub fn parse(value: &str) -> Result<AccountNumber, InvalidValue> {
        const WHAT: &str = "account_number";
        if value.starts_with('-') || value.ends_with('-') || value.contains("--") {
            return Err(InvalidValue::new(WHAT, "hyphens may only separate digits"));
        }
        let mut digits = String::with_capacity(value.len());
        for c in value.chars() {
            match c {
                '0'..='9' => digits.push(c),
                '-' => {}
                _ => return Err(InvalidValue::new(WHAT, "must contain only digits")),
            }
        }
        if !(ACCOUNT_NUMBER_DIGITS_MIN..=ACCOUNT_NUMBER_DIGITS_MAX).contains(&digits.len()) {
            return Err(InvalidValue::new(WHAT, "must have 6 to 16 digits"));
        }
        Ok(AccountNumber(digits))
    }

    /// Every digit but the last four replaced by `*`, e.g. `********1234`. Safe to log and show.
    pub fn masked(&self) -> String {
        let hidden = self.0.len() - ACCOUNT_NUMBER_VISIBLE_DIGITS;
        format!("{}{}", "*".repeat(hidden), &self.0[hidden..])
    }

    /// The full digits, for a request to the bank or for encrypted storage. Never log them.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccountNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountNumber({})", self.masked())
    }
}

/// The longest holder name accepted, in characters; Korean banks print far fewer.
pub const HOLDER_NAME_CHARS_MAX: usize = 50;

/// The name an account is held in (예금주명), as the bank reports it.
///
/// Surrounding whitespace is trimmed; the name must be non-empty, at most 50 characters and free
/// of control characters. `Debug` shows only the first character, because a name next to a
/// masked account number would still identify a person.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct HolderName(String);

impl HolderName {
    /// Parses a holder name.
    pub fn parse(value: &str) -> Result<HolderName, InvalidValue> {
        const WHAT: &str = "holder_name";
        let name = value.trim();
        if name.is_empty() {
            return Err(InvalidValue::new(WHAT, "must not be empty"));
        }
        if name.chars().count() > HOLDER_NAME_CHARS_MAX {
            return Err(InvalidValue::new(WHAT, "must be at most 50 characters"));
        }
        if name.chars().any(char::is_control) {
            return Err(InvalidValue::new(
                WHAT,
                "must not contain control characters",
            ));
        }
        Ok(HolderName(name.to_owned()))
    }

    /// The first character followed by one `*` per further character, e.g. `홍**`.
    pub fn masked(&self) -> String {
        let mut chars = self.0.chars();
        let first = chars.next().expect("a holder name is never empty");
        std::iter::once(first)
            .chain(chars.map(|_| '*'))
            .collect::<String>()
    }

    /// The full name, for comparison with a member's name or for a request to the bank.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for HolderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HolderName({})", self.masked())
    }
}

/// The longest payer number, as in Korean CMS debit mandates (납부자번호, up to 20 characters).
pub const PAYER_NUMBER_LEN_MAX: usize = 20;

/// The reference a debit consent (출금이체 동의) is registered under at the bank, chosen by the
/// platform (납부자번호): 1 to 20 ASCII letters and digits. Every collect cites it, and the
/// bank refuses a collect whose payer number has no active consent for the debited account.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct PayerNumber(String);

impl PayerNumber {
    /// Parses 1 to 20 ASCII letters and digits.
    pub fn parse(value: &str) -> Result<PayerNumber, InvalidValue> {
        let valid = (1..=PAYER_NUMBER_LEN_MAX).contains(&value.len())
            && value.bytes().all(|b| b.is_ascii_alphanumeric());
        if !valid {
            return Err(InvalidValue::new(
                "payer_number",
                "must be 1 to 20 ASCII letters and digits",
            ));
        }
        Ok(PayerNumber(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PayerNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An account at a bank: the bank's code and the account number there.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct BankAccount {
    pub bank_code: BankCode,
    pub account_number: AccountNumber,
}

impl BankAccount {
    pub fn new(bank_code: BankCode, account_number: AccountNumber) -> BankAccount {
        BankAccount {
            bank_code,
            account_number,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bank_codes_are_three_digits() {
        assert_eq!(BankCode::parse("088").unwrap().as_str(), "088");
        assert_eq!(BankCode::parse("004").unwrap().to_string(), "004");
        for bad in ["", "88", "0888", "08a", " 88", "０８８"] {
            assert!(BankCode::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            format!("{:?}", BankCode::parse("090").unwrap()),
            "BankCode(090)"
        );
    }

    #[test]
    fn account_numbers_are_digits_with_optional_hyphens() {
        let number = AccountNumber::parse("110-123-456789").unwrap();
        assert_eq!(number.expose(), "110123456789");
        assert_eq!(
            AccountNumber::parse("110123456789").unwrap(),
            number,
            "hyphens are formatting, not identity"
        );
        assert!(AccountNumber::parse("123456").is_ok());
        assert!(AccountNumber::parse("1234567890123456").is_ok());
        for bad in [
            "",
            "12345",
            "12345678901234567",
            "-123456",
            "123456-",
            "123--456",
            "123 456 789",
            "12345a",
            "١٢٣٤٥٦",
        ] {
            assert!(AccountNumber::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn account_numbers_are_masked_everywhere_but_expose() {
        let number = AccountNumber::parse("1101234561234").unwrap();
        assert_eq!(number.masked(), "*********1234");
        assert_eq!(AccountNumber::parse("123456").unwrap().masked(), "**3456");
        let debug = format!("{number:?}");
        assert_eq!(debug, "AccountNumber(*********1234)");
        let account = BankAccount::new(BankCode::parse("088").unwrap(), number);
        assert!(!format!("{account:?}").contains("110123456"));
    }

    #[test]
    fn errors_never_echo_the_input() {
        let error = AccountNumber::parse("1101234567890123456789").unwrap_err();
        assert!(!error.to_string().contains("1101234567"), "{error}");
    }

    #[test]
    fn holder_names_are_trimmed_bounded_and_masked() {
        let name = HolderName::parse("  홍길동 ").unwrap();
        assert_eq!(name.expose(), "홍길동");
        assert_eq!(name.masked(), "홍**");
        assert_eq!(format!("{name:?}"), "HolderName(홍**)");
        assert!(HolderName::parse("(주)마이페이").is_ok());
        assert!(HolderName::parse(&"가".repeat(50)).is_ok());
        assert!(HolderName::parse(&"가".repeat(51)).is_err());
        assert!(HolderName::parse("   ").is_err());
        assert!(HolderName::parse("홍\n길동").is_err());
    }

    #[test]
    fn payer_numbers_are_short_and_alphanumeric() {
        assert_eq!(
            PayerNumber::parse("usr01J9ABC").unwrap().as_str(),
            "usr01J9ABC"
        );
        assert!(PayerNumber::parse(&"a".repeat(20)).is_ok());
        assert!(PayerNumber::parse(&"a".repeat(21)).is_err());
        assert!(PayerNumber::parse("").is_err());
        assert!(PayerNumber::parse("usr_1").is_err());
    }
}
