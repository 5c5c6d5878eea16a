//! Conversion between decimal strings in major units and integer minor units.
//!
//! The grammar is intentionally narrower than what `str::parse` accepts: an API that moves money
//! must reject anything a human could read two ways, so there are no signs (except the explicit
//! `-` of [`parse_signed_amount`]), no exponents, no separators, no padding and no leading zeros.

use crate::{Currency, MoneyError};

/// The longest amount string that is even looked at.
///
/// The widest legitimate value, `i64::MIN` formatted with three fraction digits, is 21 bytes, so
/// this leaves ample headroom while bounding the work done on hostile input.
pub(crate) const MAX_AMOUNT_LEN: usize = 40;

/// Parses a non-negative amount in major units into minor units.
///
/// `"12.5"` in USD is `1250`; `"15000"` in KRW is `15000`. Up to `exponent` fraction digits are
/// accepted, and none at all (not even a bare `.`) for zero-exponent currencies. Malformed input
/// yields [`MoneyError::AmountInvalid`]; well-formed input that does not fit in `i64` minor units
/// yields [`MoneyError::Overflow`].
pub fn parse_amount(amount: &str, currency: Currency) -> Result<i64, MoneyError> {
    check_length(amount, currency)?;
    if amount.starts_with('-') {
        return Err(invalid(currency, "negative amounts are not allowed"));
    }
    let magnitude = parse_magnitude(amount, currency)?;
    i64::try_from(magnitude).map_err(|_| MoneyError::Overflow)
}

/// Like [`parse_amount`] but also accepts a single leading `-`.
///
/// This exists for balances that may legitimately be negative, such as asset accounts. `"-0"` is
/// accepted and equals `0`, so that every output of [`format_minor`] parses back, including
/// `i64::MIN`, whose magnitude does not fit in `i64` on its own.
pub fn parse_signed_amount(amount: &str, currency: Currency) -> Result<i64, MoneyError> {
    check_length(amount, currency)?;
    match amount.strip_prefix('-') {
        Some(rest) => {
            let magnitude = parse_magnitude(rest, currency)?;
            0i64.checked_sub_unsigned(magnitude)
                .ok_or(MoneyError::Overflow)
        }
        None => parse_amount(amount, currency),
    }
}

/// Formats minor units with exactly `exponent` fraction digits.
///
/// Negative values get a leading `-`. The output is the canonical form accepted by
/// [`parse_signed_amount`] (and by [`parse_amount`] when non-negative). The magnitude is taken
/// with `unsigned_abs`, so `i64::MIN` formats correctly instead of overflowing.
pub fn format_minor(minor: i64, currency: Currency) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let magnitude = minor.unsigned_abs();
    let width = usize::from(currency.exponent());
    if width == 0 {
        return format!("{sign}{magnitude}");
    }
    let scale = scale(currency);
    let (major, fraction) = (magnitude / scale, magnitude % scale);
    format!("{sign}{major}.{fraction:0width$}")
}

/// Returns `10^exponent`, the number of minor units in one major unit.
///
/// The table is validated at compile time to have exponents no larger than `MAX_EXPONENT`, so
/// this cannot overflow and is never zero.
fn scale(currency: Currency) -> u64 {
    10u64.pow(u32::from(currency.exponent()))
}

/// Builds the error for a malformed amount string.
fn invalid(currency: Currency, reason: &'static str) -> MoneyError {
    MoneyError::AmountInvalid {
        currency: currency.code(),
        reason,
    }
}

/// Rejects empty and over-long input before any other work is done.
fn check_length(amount: &str, currency: Currency) -> Result<(), MoneyError> {
    if amount.is_empty() {
        return Err(invalid(currency, "empty"));
    }
    if amount.len() > MAX_AMOUNT_LEN {
        return Err(invalid(currency, "too long"));
    }
    Ok(())
}

/// Validates an unsigned amount's syntax and converts it to a magnitude in minor units.
///
/// Syntax is checked in full before any arithmetic, so a malformed string is always reported as
/// `AmountInvalid` even when it is also very large.
fn parse_magnitude(amount: &str, currency: Currency) -> Result<u64, MoneyError> {
    let (integer, fraction) = split_amount(amount, currency)?;
    let major = digits_value(integer)?;
    let minor = fraction_value(fraction, currency)?;
    major
        .checked_mul(scale(currency))
        .and_then(|scaled| scaled.checked_add(minor))
        .ok_or(MoneyError::Overflow)
}

/// Splits an amount into validated integer and fraction digit strings.
///
/// The fraction is empty when there is no `.`; a `.` with nothing after it is an error.
fn split_amount(amount: &str, currency: Currency) -> Result<(&str, &str), MoneyError> {
    let (integer, fraction) = match amount.split_once('.') {
        Some((integer, fraction)) => (integer, Some(fraction)),
        None => (amount, None),
    };
    check_integer_part(integer, currency)?;
    match fraction {
        None => Ok((integer, "")),
        Some(fraction) => {
            check_fraction_part(fraction, currency)?;
            Ok((integer, fraction))
        }
    }
}

/// Reports whether `text` is non-empty and consists only of ASCII digits.
///
/// Checking bytes rather than `char::is_numeric` is what keeps Arabic-Indic or full-width digits
/// out.
fn is_ascii_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit())
}

/// Checks the part before the `.`: `0` or digits without a leading zero.
fn check_integer_part(integer: &str, currency: Currency) -> Result<(), MoneyError> {
    if integer.is_empty() {
        return Err(invalid(currency, "missing integer digits"));
    }
    if !is_ascii_digits(integer) {
        return Err(invalid(
            currency,
            "only ASCII digits and one '.' are allowed",
        ));
    }
    if integer.len() > 1 && integer.starts_with('0') {
        return Err(invalid(currency, "leading zeros are not allowed"));
    }
    Ok(())
}

/// Checks the part after the `.`: one to `exponent` digits, and only if the currency has a
/// minor unit at all.
fn check_fraction_part(fraction: &str, currency: Currency) -> Result<(), MoneyError> {
    let exponent = usize::from(currency.exponent());
    if exponent == 0 {
        return Err(invalid(currency, "currency has no minor unit"));
    }
    if fraction.is_empty() {
        return Err(invalid(currency, "missing fraction digits"));
    }
    if !is_ascii_digits(fraction) {
        return Err(invalid(
            currency,
            "only ASCII digits and one '.' are allowed",
        ));
    }
    if fraction.len() > exponent {
        return Err(invalid(currency, "too many fraction digits"));
    }
    Ok(())
}

/// Converts already-validated ASCII digits to a number, reporting overflow instead of wrapping.
fn digits_value(digits: &str) -> Result<u64, MoneyError> {
    digits.bytes().try_fold(0u64, |value, byte| {
        value
            .checked_mul(10)
            .and_then(|value| value.checked_add(u64::from(byte - b'0')))
            .ok_or(MoneyError::Overflow)
    })
}

/// Converts validated fraction digits to minor units, padding short fractions with zeros.
///
/// `"5"` in USD means fifty cents, so the digits are scaled by the number missing.
fn fraction_value(fraction: &str, currency: Currency) -> Result<u64, MoneyError> {
    let digits = digits_value(fraction)?;
    let missing = usize::from(currency.exponent())
        .checked_sub(fraction.len())
        .ok_or_else(|| invalid(currency, "too many fraction digits"))?;
    let padding = (0..missing).try_fold(1u64, |acc, _| acc.checked_mul(10));
    padding
        .and_then(|padding| digits.checked_mul(padding))
        .ok_or(MoneyError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_invalid(result: Result<i64, MoneyError>) -> bool {
        matches!(result, Err(MoneyError::AmountInvalid { .. }))
    }

    #[test]
    fn parses_documented_examples() {
        assert_eq!(parse_amount("15000", Currency::KRW), Ok(15000));
        assert_eq!(parse_amount("12.50", Currency::USD), Ok(1250));
        assert_eq!(parse_amount("12.5", Currency::USD), Ok(1250));
        assert_eq!(parse_amount("0.001", Currency::BHD), Ok(1));
        assert_eq!(parse_amount("0", Currency::USD), Ok(0));
        assert_eq!(parse_amount("0.0", Currency::USD), Ok(0));
        assert_eq!(parse_amount("0.05", Currency::EUR), Ok(5));
        assert_eq!(parse_amount("1.2", Currency::BHD), Ok(1200));
        assert_eq!(parse_amount("100", Currency::JPY), Ok(100));
    }

    #[test]
    fn formats_documented_examples() {
        assert_eq!(format_minor(1250, Currency::USD), "12.50");
        assert_eq!(format_minor(15000, Currency::KRW), "15000");
        assert_eq!(format_minor(-3000, Currency::BHD), "-3.000");
        assert_eq!(format_minor(1, Currency::BHD), "0.001");
        assert_eq!(format_minor(-5, Currency::USD), "-0.05");
        assert_eq!(format_minor(0, Currency::USD), "0.00");
        assert_eq!(format_minor(0, Currency::KRW), "0");
    }

    #[test]
    fn formats_extremes_without_panicking() {
        assert_eq!(
            format_minor(i64::MIN, Currency::USD),
            "-92233720368547758.08"
        );
        assert_eq!(
            format_minor(i64::MIN, Currency::KRW),
            "-9223372036854775808"
        );
        assert_eq!(
            format_minor(i64::MAX, Currency::BHD),
            "9223372036854775.807"
        );
    }

    #[test]
    fn rejects_malformed_amounts() {
        let usd = [
            "",
            " 1",
            "1 ",
            " ",
            "+1",
            "-1",
            "1e3",
            "1E3",
            ".5",
            "5.",
            "1.234",
            "١",
            "１",
            "1,000",
            "1_000",
            "0x10",
            "NaN",
            "nan",
            "inf",
            "infinity",
            "007",
            "00.5",
            "00",
            "1.2.3",
            "1..2",
            "1.-2",
            "1.+2",
            "--1",
            "-",
            ".",
            "1.2 ",
            "\t1",
            "1\n",
            "12.5\u{0}",
            "٣.50",
        ];
        for amount in usd {
            assert!(
                is_invalid(parse_amount(amount, Currency::USD)),
                "{amount:?} should be rejected"
            );
        }
        for amount in ["12.5", "12.", "12.0", "12.00", ".0", "0.0"] {
            assert!(
                is_invalid(parse_amount(amount, Currency::KRW)),
                "{amount:?} should be rejected for KRW"
            );
        }
        assert!(is_invalid(parse_amount("0.0001", Currency::BHD)));
    }

    #[test]
    fn rejection_reasons_are_specific() {
        let reason = |amount: &str, currency: Currency| match parse_amount(amount, currency) {
            Err(MoneyError::AmountInvalid { reason, currency }) => (currency, reason),
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(reason("", Currency::USD), ("USD", "empty"));
        assert_eq!(reason("1.234", Currency::USD).1, "too many fraction digits");
        assert_eq!(
            reason("007", Currency::USD).1,
            "leading zeros are not allowed"
        );
        assert_eq!(
            reason("12.5", Currency::KRW),
            ("KRW", "currency has no minor unit")
        );
        assert_eq!(
            reason("-1", Currency::USD).1,
            "negative amounts are not allowed"
        );
        assert_eq!(reason(".5", Currency::USD).1, "missing integer digits");
        assert_eq!(reason("5.", Currency::USD).1, "missing fraction digits");
    }

    #[test]
    fn caps_length_before_parsing() {
        let long = "1".repeat(MAX_AMOUNT_LEN + 1);
        assert_eq!(
            parse_amount(&long, Currency::KRW),
            Err(invalid(Currency::KRW, "too long"))
        );
        assert_eq!(
            parse_signed_amount(&format!("-{}", "1".repeat(MAX_AMOUNT_LEN)), Currency::KRW),
            Err(invalid(Currency::KRW, "too long"))
        );
    }

    #[test]
    fn rejects_out_of_range_with_overflow() {
        let cases = [
            ("9223372036854775808", Currency::KRW),
            ("99999999999999999999", Currency::KRW),
            ("92233720368547758.08", Currency::USD),
            ("92233720368547759", Currency::USD),
            ("9223372036854775.808", Currency::BHD),
            ("18446744073709551616", Currency::JPY),
            ("999999999999999999999999999999", Currency::USD),
        ];
        for (amount, currency) in cases {
            assert_eq!(
                parse_amount(amount, currency),
                Err(MoneyError::Overflow),
                "{amount} {currency}"
            );
        }
        assert_eq!(
            parse_signed_amount("-92233720368547758.09", Currency::USD),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn accepts_extremes_exactly() {
        assert_eq!(
            parse_amount("9223372036854775807", Currency::KRW),
            Ok(i64::MAX)
        );
        assert_eq!(
            parse_amount("92233720368547758.07", Currency::USD),
            Ok(i64::MAX)
        );
        assert_eq!(
            parse_signed_amount("-92233720368547758.08", Currency::USD),
            Ok(i64::MIN)
        );
        assert_eq!(
            parse_signed_amount("-9223372036854775808", Currency::KRW),
            Ok(i64::MIN)
        );
    }

    #[test]
    fn signed_parsing() {
        assert_eq!(parse_signed_amount("-12.50", Currency::USD), Ok(-1250));
        assert_eq!(parse_signed_amount("-3.000", Currency::BHD), Ok(-3000));
        assert_eq!(parse_signed_amount("12.5", Currency::USD), Ok(1250));
        assert_eq!(parse_signed_amount("-0", Currency::USD), Ok(0));
        assert_eq!(parse_signed_amount("-0.00", Currency::USD), Ok(0));
        for amount in [
            "--1", "-", "+1", "- 1", "-+1", "-.5", "-007", "1-", "-1e3", " -1",
        ] {
            assert!(
                is_invalid(parse_signed_amount(amount, Currency::USD)),
                "{amount:?} should be rejected"
            );
        }
    }
}
