//! The amount parser on any string, in every currency: it never panics, everything it
//! accepts means exactly the decimal number written, and everything it accepts or formats
//! parses back to the same minor units.

#![no_main]

use libfuzzer_sys::fuzz_target;
use money::{format_minor, parse_amount, parse_signed_amount, Currency, Money, MoneyError};

fuzz_target!(|input: (u8, &str, i64)| {
    let (which, text, minor) = input;
    let currencies: Vec<Currency> = Currency::all().collect();
    let currency = currencies[usize::from(which) % currencies.len()];

    let signed = parse_signed_amount(text, currency);
    match parse_amount(text, currency) {
        Ok(value) => {
            assert!(value >= 0, "{text:?} in {currency:?} parsed to {value}");
            assert_eq!(signed, Ok(value), "the signed parser disagrees on {text:?}");
            assert_eq!(Money::parse(text, currency).map(Money::minor), Ok(value));
        }
        Err(MoneyError::Overflow) => assert_eq!(signed, Err(MoneyError::Overflow)),
        Err(_) => {}
    }
    if let Ok(value) = signed {
        assert_eq!(
            Some(i128::from(value)),
            decimal_value(text, currency.exponent()),
            "{text:?} in {currency:?} parsed to {value}"
        );
        let canonical = format_minor(value, currency);
        assert_eq!(parse_signed_amount(&canonical, currency), Ok(value));
    }

    // Every i64 formats to a string that parses back to it.
    let formatted = format_minor(minor, currency);
    assert_eq!(
        parse_signed_amount(&formatted, currency),
        Ok(minor),
        "{formatted:?} in {currency:?}"
    );
});

/// The value in minor units of an accepted amount, read independently of the parser: an
/// optional `-`, digits, and at most `exponent` fraction digits after a `.`.
fn decimal_value(text: &str, exponent: u8) -> Option<i128> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (major, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if fraction.len() > usize::from(exponent) {
        return None;
    }
    let padded = format!("{major}{fraction:0<width$}", width = usize::from(exponent));
    if padded.is_empty() || !padded.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude: i128 = padded.parse().ok()?;
    Some(if negative { -magnitude } else { magnitude })
}
