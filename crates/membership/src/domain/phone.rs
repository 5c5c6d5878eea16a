//! Phone numbers, stored in one canonical form: E.164 with its `+` (`+821012345678`).
//!
//! One form means one uniqueness check: `010-1234-5678`, `01012345678`, `+82 10-1234-5678`
//! and `+82 010 1234 5678` all name the same phone and are all stored as `+821012345678`.
//!
//! Accepted input, with spaces and hyphens anywhere between digits:
//! - a Korean mobile number written domestically: `010` followed by 8 digits, or a legacy
//!   `011`, `016`, `017`, `018`, `019` prefix followed by 7 or 8 digits;
//! - an international number: `+`, a country code and subscriber number, 8 to 15 digits in
//!   all (E.164 allows at most 15). Under `+82` the rest must be a Korean mobile number as
//!   above, with or without its domestic leading `0`, because the phone is used to reach the
//!   member by text message and ARS, which a Korean landline cannot receive.
//!
//! Other countries' numbers are checked for shape only: telling their mobile ranges apart
//! would need a numbering-plan database that this project does not carry.

use std::fmt;

use crate::MemberError;

/// The longest input read, in bytes, separators included.
const PHONE_INPUT_LEN_MAX: usize = 32;
/// The fewest digits of an international number, country code included.
const E164_DIGITS_MIN: usize = 8;
/// The most digits E.164 allows, country code included.
const E164_DIGITS_MAX: usize = 15;

/// A phone number in E.164 form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

impl Phone {
    /// Parses a domestic Korean mobile number or an international number into E.164.
    pub fn parse(raw: &str) -> Result<Phone, MemberError> {
        let text = raw.trim();
        if text.is_empty() || text.len() > PHONE_INPUT_LEN_MAX {
            return Err(MemberError::PhoneInvalid("must be 1 to 32 characters long"));
        }
        let (international, rest) = match text.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let starts_and_ends_with_digit = rest.starts_with(|c: char| c.is_ascii_digit())
            && rest.ends_with(|c: char| c.is_ascii_digit());
        if !starts_and_ends_with_digit
            || !rest
                .chars()
                .all(|c| c.is_ascii_digit() || c == ' ' || c == '-')
        {
            return Err(MemberError::PhoneInvalid(
                "may only contain digits, spaces and hyphens after an optional leading +",
            ));
        }
        let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
        if international {
            international_number(&digits)
        } else {
            korean_mobile(&digits)
                .map(|national| Phone(format!("+82{national}")))
                .ok_or(MemberError::PhoneInvalid(
                    "must be a Korean mobile number such as 010-1234-5678, or start with + and a country code",
                ))
        }
    }

    /// The number in E.164 form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Wraps a number read back from the database, where it was parsed on the way in.
    pub(crate) fn from_db(value: String) -> Phone {
        Phone(value)
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks the digits after a `+`.
fn international_number(digits: &str) -> Result<Phone, MemberError> {
    if let Some(korean) = digits.strip_prefix("82") {
        let with_zero = if korean.starts_with('0') {
            korean.to_owned()
        } else {
            format!("0{korean}")
        };
        return korean_mobile(&with_zero)
            .map(|national| Phone(format!("+82{national}")))
            .ok_or(MemberError::PhoneInvalid(
                "a +82 number must be a Korean mobile number such as +82 10-1234-5678",
            ));
    }
    let length_ok = (E164_DIGITS_MIN..=E164_DIGITS_MAX).contains(&digits.len());
    if !length_ok || digits.starts_with('0') {
        return Err(MemberError::PhoneInvalid(
            "an international number must have 8 to 15 digits and a country code that does not start with 0",
        ));
    }
    Ok(Phone(format!("+{digits}")))
}

/// The national significant number (without the leading `0`) of a domestic Korean mobile
/// number, if `digits` is one.
fn korean_mobile(digits: &str) -> Option<&str> {
    let (prefix, subscriber) = (digits.get(..3)?, digits.get(3..)?);
    let valid = match prefix {
        "010" => subscriber.len() == 8,
        "011" | "016" | "017" | "018" | "019" => (7..=8).contains(&subscriber.len()),
        _ => false,
    };
    valid.then(|| &digits[1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_way_of_writing_a_korean_mobile_number_is_one_number() {
        for input in [
            "010-1234-5678",
            "01012345678",
            "010 1234 5678",
            " 010-1234-5678 ",
            "+82 10-1234-5678",
            "+821012345678",
            "+82 010 1234 5678",
            "+82-10-1234-5678",
        ] {
            assert_eq!(
                Phone::parse(input).expect(input).as_str(),
                "+821012345678",
                "{input}"
            );
        }
        assert_eq!(
            Phone::parse("011-123-4567").unwrap().as_str(),
            "+82111234567"
        );
    }

    #[test]
    fn international_numbers_keep_their_digits() {
        assert_eq!(
            Phone::parse("+1 415-555-0100").unwrap().as_str(),
            "+14155550100"
        );
        assert_eq!(
            Phone::parse("+44 20 7946 0958").unwrap().as_str(),
            "+442079460958"
        );
        assert_eq!(
            Phone::parse("+123456789012345").unwrap().to_string(),
            "+123456789012345"
        );
    }

    #[test]
    fn everything_else_is_refused() {
        for bad in [
            "",
            "   ",
            "010-1234-567",
            "010-1234-56789",
            "02-123-4567",
            "1012345678",
            "+82 2-123-4567",
            "+82 10-1234-567",
            "+1234567",
            "+1234567890123456",
            "+0 123 456 789",
            "+",
            "++821012345678",
            "010.1234.5678",
            "(010) 1234-5678",
            "010-1234-5678-",
            "-010-1234-5678",
            "010１２３４５６７８",
            "phone",
            "+1 415 555 0100 ext 2",
            &"0".repeat(40),
        ] {
            let error = Phone::parse(bad).expect_err(bad);
            assert_eq!(error.code(), "phone_invalid", "{bad:?}");
        }
    }
}
