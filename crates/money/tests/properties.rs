//! Property tests for the public API of the `money` crate.
//!
//! The unit tests beside the code pin down specific examples; these tests check the invariants
//! that other crates rely on (formatting round-trips, no panics on hostile input, arithmetic that
//! is exact or fails) across many generated inputs and every currency in the table.

use money::{format_minor, parse_amount, parse_signed_amount, Currency, Money, MoneyError};
use proptest::prelude::*;

/// Any `i64`, with the boundaries and small values that hide most bugs drawn more often.
fn any_minor() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => any::<i64>(),
        1 => Just(i64::MIN),
        1 => Just(i64::MAX),
        1 => Just(0i64),
        2 => -10_000i64..10_000,
        1 => (i64::MAX - 10_000)..=i64::MAX,
        1 => i64::MIN..=(i64::MIN + 10_000),
    ]
}

/// Any non-negative `i64`, biased towards the same boundaries as [`any_minor`].
fn non_negative_minor() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => 0..=i64::MAX,
        1 => Just(0i64),
        1 => Just(i64::MAX),
        2 => 0i64..10_000,
        1 => (i64::MAX - 10_000)..=i64::MAX,
    ]
}

/// Any currency from the table.
fn any_currency() -> impl Strategy<Value = Currency> {
    proptest::sample::select(Currency::all().collect::<Vec<_>>())
}

/// Strings over the alphabet `0-9 . - + e` and space: mostly noise, plus a share that is shaped
/// like a decimal so that the accepting branch of the parsers is exercised too.
fn amount_like_string() -> impl Strategy<Value = String> {
    prop_oneof!["[0-9.+e -]{0,45}", "-?[0-9]{1,20}(\\.[0-9]{0,4})?",]
}

/// Reports whether an error is one of the two kinds a string parser may return.
fn is_parse_error(err: &MoneyError) -> bool {
    matches!(err, MoneyError::AmountInvalid { .. } | MoneyError::Overflow)
}

proptest! {
    #[test]
    fn formatted_non_negative_amounts_parse_back(x in non_negative_minor()) {
        for currency in Currency::all() {
            let text = format_minor(x, currency);
            prop_assert_eq!(parse_amount(&text, currency), Ok(x), "{} {}", text, currency);
        }
    }

    #[test]
    fn formatted_signed_amounts_parse_back(x in any_minor()) {
        for currency in Currency::all() {
            let text = format_minor(x, currency);
            prop_assert_eq!(parse_signed_amount(&text, currency), Ok(x), "{} {}", text, currency);
        }
    }

    #[test]
    fn formatting_uses_exactly_exponent_fraction_digits(x in any_minor()) {
        for currency in Currency::all() {
            let text = format_minor(x, currency);
            let fraction = text.split_once('.').map(|(_, fraction)| fraction.len());
            let expected = usize::from(currency.exponent());
            prop_assert_eq!(fraction.unwrap_or(0), expected, "{}", text);
            prop_assert_eq!(text.starts_with('-'), x < 0, "{}", text);
        }
    }

    #[test]
    fn money_round_trips_through_its_decimal_string(x in non_negative_minor(), currency in any_currency()) {
        let amount = Money::from_minor(x, currency);
        prop_assert_eq!(Money::parse(&amount.to_decimal_string(), currency), Ok(amount));
    }

    #[test]
    fn arbitrary_strings_parse_consistently_or_are_rejected(text in amount_like_string()) {
        for currency in Currency::all() {
            match parse_amount(&text, currency) {
                Ok(value) => {
                    prop_assert!(value >= 0);
                    prop_assert_eq!(parse_amount(&format_minor(value, currency), currency), Ok(value));
                    prop_assert_eq!(parse_signed_amount(&text, currency), Ok(value));
                }
                Err(err) => prop_assert!(is_parse_error(&err), "{:?}", err),
            }
            match parse_signed_amount(&text, currency) {
                Ok(value) => prop_assert_eq!(
                    parse_signed_amount(&format_minor(value, currency), currency),
                    Ok(value)
                ),
                Err(err) => prop_assert!(is_parse_error(&err), "{:?}", err),
            }
        }
    }

    #[test]
    fn arbitrary_unicode_never_panics(text in "\\PC{0,45}", currency in any_currency()) {
        if let Err(err) = parse_signed_amount(&text, currency) {
            prop_assert!(is_parse_error(&err), "{:?}", err);
        }
        if let Err(err) = parse_amount(&text, currency) {
            prop_assert!(is_parse_error(&err), "{:?}", err);
        }
    }

    #[test]
    fn checked_add_agrees_with_i128(a in any_minor(), b in any_minor(), currency in any_currency()) {
        let exact = i128::from(a) + i128::from(b);
        let result = Money::from_minor(a, currency).checked_add(Money::from_minor(b, currency));
        match i64::try_from(exact) {
            Ok(sum) => prop_assert_eq!(result, Ok(Money::from_minor(sum, currency))),
            Err(_) => prop_assert_eq!(result, Err(MoneyError::Overflow)),
        }
    }

    #[test]
    fn checked_sub_agrees_with_i128(a in any_minor(), b in any_minor(), currency in any_currency()) {
        let exact = i128::from(a) - i128::from(b);
        let result = Money::from_minor(a, currency).checked_sub(Money::from_minor(b, currency));
        match i64::try_from(exact) {
            Ok(difference) => prop_assert_eq!(result, Ok(Money::from_minor(difference, currency))),
            Err(_) => prop_assert_eq!(result, Err(MoneyError::Overflow)),
        }
    }

    #[test]
    fn checked_neg_agrees_with_i128(a in any_minor(), currency in any_currency()) {
        let result = Money::from_minor(a, currency).checked_neg();
        match i64::try_from(-i128::from(a)) {
            Ok(negated) => prop_assert_eq!(result, Ok(Money::from_minor(negated, currency))),
            Err(_) => prop_assert_eq!(result, Err(MoneyError::Overflow)),
        }
    }

    #[test]
    fn mixed_currencies_always_mismatch(
        a in any_minor(),
        b in any_minor(),
        left in any_currency(),
        right in any_currency(),
    ) {
        prop_assume!(left != right);
        let (x, y) = (Money::from_minor(a, left), Money::from_minor(b, right));
        let expected = MoneyError::CurrencyMismatch { left: left.code(), right: right.code() };
        prop_assert_eq!(x.checked_add(y), Err(expected.clone()));
        prop_assert_eq!(x.checked_sub(y), Err(expected));
    }

    #[test]
    fn currency_serde_round_trip(currency in any_currency()) {
        let json = serde_json::to_string(&currency).expect("serialising a currency cannot fail");
        prop_assert_eq!(&json, &format!("\"{}\"", currency.code()));
        prop_assert_eq!(serde_json::from_str::<Currency>(&json).ok(), Some(currency));
    }

    #[test]
    fn currency_deserialisation_matches_parse(code in "[A-Za-z]{0,4}") {
        let json = serde_json::to_string(&code).expect("serialising a string cannot fail");
        match (Currency::parse(&code), serde_json::from_str::<Currency>(&json)) {
            (Ok(parsed), Ok(deserialised)) => prop_assert_eq!(parsed, deserialised),
            (Err(_), Err(err)) => prop_assert!(err.to_string().contains("currency_unknown"), "{}", err),
            (parsed, deserialised) => prop_assert!(false, "{:?} vs {:?}", parsed, deserialised.ok()),
        }
    }
}

#[test]
fn serde_json_round_trips_every_currency() {
    for currency in Currency::all() {
        let json = serde_json::to_string(&currency).expect("serialising a currency cannot fail");
        let back: Currency = serde_json::from_str(&json).expect("own output must deserialise");
        assert_eq!(back, currency);
    }
}

#[test]
fn unknown_currency_deserialisation_names_the_error_code() {
    for json in ["\"usd\"", "\"XXX\"", "\"US\"", "\" USD\""] {
        let err = serde_json::from_str::<Currency>(json).expect_err(json);
        assert!(err.to_string().contains("currency_unknown"), "{err}");
    }
    assert!(serde_json::from_str::<Currency>("42").is_err());
}
