//! Amount and currency fields as they arrive in JSON.
//!
//! An amount's meaning depends on its currency (`"12.5"` is fine in USD and wrong in KRW), so
//! the two are captured raw during deserialisation and parsed together afterwards. Capturing
//! rather than failing inside serde also means a JSON number in an amount field is reported as
//! `amount_invalid` by a typed path, instead of by matching on serde's error text.

use money::{Currency, Money, MoneyError};
use serde::{Deserialize, Deserializer};

use crate::error::ApiError;

/// An amount field as received: a string to parse, or any other JSON value, which is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AmountInput {
    /// A JSON string; its grammar is checked by [`AmountInput::to_money`].
    Text(String),
    /// A number, boolean, object or array: amounts must be strings so that no float parser ever
    /// sees them.
    NotAString,
}

/// A currency field as received, parsed by [`CurrencyInput::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CurrencyInput {
    /// A JSON string, not yet checked against the ISO 4217 table.
    Text(String),
    /// Any other JSON value.
    NotAString,
}

impl<'de> Deserialize<'de> for AmountInput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::String(text) => AmountInput::Text(text),
            _ => AmountInput::NotAString,
        })
    }
}

impl<'de> Deserialize<'de> for CurrencyInput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::String(text) => CurrencyInput::Text(text),
            _ => CurrencyInput::NotAString,
        })
    }
}

impl AmountInput {
    /// Parses the amount in major units of `currency` into money, refusing signs, exponents,
    /// padding, non-ASCII digits and more fraction digits than the currency has.
    pub fn to_money(&self, field: &str, currency: Currency) -> Result<Money, ApiError> {
        match self {
            AmountInput::Text(text) => Money::parse(text, currency).map_err(|error| match error {
                MoneyError::Overflow => ApiError::Ledger(ledger::LedgerError::AmountOutOfRange),
                other => ApiError::AmountInvalid(format!("{field}: {other}")),
            }),
            AmountInput::NotAString => Err(ApiError::AmountInvalid(format!(
                "{field}: amounts must be JSON strings in major units, such as \"12.50\""
            ))),
        }
    }
}

impl CurrencyInput {
    /// Looks the code up in the ISO 4217 table; lowercase or padded codes are refused.
    pub fn parse(&self, field: &str) -> Result<Currency, ApiError> {
        let unknown = || {
            ApiError::CurrencyUnknown(format!(
                "{field}: expected a supported ISO 4217 code such as \"KRW\" or \"USD\""
            ))
        };
        match self {
            CurrencyInput::Text(code) => Currency::parse(code).map_err(|_| unknown()),
            CurrencyInput::NotAString => Err(unknown()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amount(json: &str) -> AmountInput {
        serde_json::from_str(json).expect("any JSON value deserialises")
    }

    #[test]
    fn strings_parse_in_the_currency_exponent() {
        assert_eq!(
            amount("\"12.5\"").to_money("amount", Currency::USD).ok(),
            Some(Money::from_minor(1250, Currency::USD))
        );
        assert_eq!(
            amount("\"15000\"")
                .to_money("amount", Currency::KRW)
                .map(Money::minor)
                .ok(),
            Some(15000)
        );
    }

    #[test]
    fn everything_else_is_amount_invalid() {
        let cases = [
            ("1000", Currency::USD),
            ("1.5", Currency::USD),
            ("true", Currency::USD),
            ("[\"1\"]", Currency::USD),
            ("{\"v\":\"1\"}", Currency::USD),
            ("\"1e3\"", Currency::USD),
            ("\"-1\"", Currency::USD),
            ("\" 1\"", Currency::USD),
            ("\"1.234\"", Currency::USD),
            ("\"12.5\"", Currency::KRW),
            ("\"١\"", Currency::USD),
        ];
        for (json, currency) in cases {
            let error = amount(json).to_money("amount", currency).expect_err(json);
            assert_eq!(error.code(), "amount_invalid", "{json}");
        }
    }

    #[test]
    fn overflow_is_out_of_range() {
        let error = amount("\"99999999999999999999\"")
            .to_money("amount", Currency::KRW)
            .expect_err("too large");
        assert_eq!(error.code(), "amount_out_of_range");
    }

    #[test]
    fn currencies_must_be_known_strings() {
        let parse = |json: &str| {
            serde_json::from_str::<CurrencyInput>(json)
                .expect("any JSON value deserialises")
                .parse("currency")
        };
        assert_eq!(parse("\"KRW\"").ok(), Some(Currency::KRW));
        for json in ["\"XYZ\"", "\"usd\"", "840", "null"] {
            assert_eq!(parse(json).expect_err(json).code(), "currency_unknown");
        }
    }
}
