//! The `Money` value type: an integer count of minor units tagged with its currency.

use std::fmt;

use crate::{format_minor, parse_amount, Currency, MoneyError};

/// An amount of one currency, stored as a signed count of minor units.
///
/// Keeping the currency next to the amount lets every operation refuse to mix currencies, and
/// using integers means there is never a rounding question. The fields are private so that the
/// only way to combine amounts is through the checked methods below, which report overflow
/// instead of wrapping or panicking. `Money` deliberately does not implement `Ord`, because
/// comparing amounts of different currencies has no meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    /// Wraps a count of minor units (cents for USD, won for KRW) in its currency.
    pub fn from_minor(minor: i64, currency: Currency) -> Money {
        Money { minor, currency }
    }

    /// Returns nothing of the given currency, the identity for addition.
    pub fn zero(currency: Currency) -> Money {
        Money::from_minor(0, currency)
    }

    /// Returns the amount in minor units, which is the form to store and compute with.
    pub fn minor(self) -> i64 {
        self.minor
    }

    /// Returns the currency this amount is denominated in.
    pub fn currency(self) -> Currency {
        self.currency
    }

    /// Reports whether the amount is exactly zero.
    pub fn is_zero(self) -> bool {
        self.minor == 0
    }

    /// Reports whether the amount is strictly greater than zero.
    pub fn is_positive(self) -> bool {
        self.minor > 0
    }

    /// Reports whether the amount is strictly less than zero.
    pub fn is_negative(self) -> bool {
        self.minor < 0
    }

    /// Adds two amounts of the same currency.
    ///
    /// Different currencies yield [`MoneyError::CurrencyMismatch`] and a sum outside `i64` yields
    /// [`MoneyError::Overflow`]; the currency check comes first because it is the more
    /// fundamental mistake.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.ensure_same_currency(other)?;
        self.minor
            .checked_add(other.minor)
            .map(|minor| Money::from_minor(minor, self.currency))
            .ok_or(MoneyError::Overflow)
    }

    /// Subtracts `other` from `self`, with the same error rules as [`Money::checked_add`].
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.ensure_same_currency(other)?;
        self.minor
            .checked_sub(other.minor)
            .map(|minor| Money::from_minor(minor, self.currency))
            .ok_or(MoneyError::Overflow)
    }

    /// Negates the amount; only `i64::MIN` minor units fails, with [`MoneyError::Overflow`].
    pub fn checked_neg(self) -> Result<Money, MoneyError> {
        self.minor
            .checked_neg()
            .map(|minor| Money::from_minor(minor, self.currency))
            .ok_or(MoneyError::Overflow)
    }

    /// Parses a non-negative decimal string in major units, following [`parse_amount`].
    ///
    /// Negative input is rejected because amounts supplied by clients (payments, refunds) are
    /// always positive; direction is expressed by the operation, not the sign.
    pub fn parse(amount: &str, currency: Currency) -> Result<Money, MoneyError> {
        parse_amount(amount, currency).map(|minor| Money::from_minor(minor, currency))
    }

    /// Returns the canonical decimal string in major units, with exactly `exponent` fraction
    /// digits ("12.50" for USD, "15000" for KRW, "-3.000" for BHD).
    pub fn to_decimal_string(self) -> String {
        format_minor(self.minor, self.currency)
    }

    /// Fails with [`MoneyError::CurrencyMismatch`] unless both amounts share a currency.
    fn ensure_same_currency(self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            return Ok(());
        }
        Err(MoneyError::CurrencyMismatch {
            left: self.currency.code(),
            right: other.currency.code(),
        })
    }
}

impl fmt::Display for Money {
    /// Writes the canonical decimal string followed by the code, e.g. `12.50 USD`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal_string(), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(minor: i64) -> Money {
        Money::from_minor(minor, Currency::USD)
    }

    #[test]
    fn accessors_and_sign_predicates() {
        let amount = usd(-5);
        assert_eq!(amount.minor(), -5);
        assert_eq!(amount.currency(), Currency::USD);
        assert!(amount.is_negative() && !amount.is_positive() && !amount.is_zero());
        assert!(usd(5).is_positive());
        assert!(Money::zero(Currency::KRW).is_zero());
        assert_eq!(Money::zero(Currency::KRW).currency(), Currency::KRW);
    }

    #[test]
    fn checked_add_and_sub() {
        assert_eq!(usd(1250).checked_add(usd(50)), Ok(usd(1300)));
        assert_eq!(usd(1250).checked_sub(usd(1300)), Ok(usd(-50)));
    }

    #[test]
    fn checked_add_rejects_mismatched_currencies() {
        let won = Money::from_minor(1, Currency::KRW);
        let mismatch = MoneyError::CurrencyMismatch {
            left: "USD",
            right: "KRW",
        };
        assert_eq!(usd(1).checked_add(won), Err(mismatch.clone()));
        assert_eq!(usd(1).checked_sub(won), Err(mismatch));
    }

    #[test]
    fn mismatch_is_reported_before_overflow() {
        let won = Money::from_minor(i64::MAX, Currency::KRW);
        assert_eq!(
            usd(i64::MAX).checked_add(won).map_err(|err| err.code()),
            Err("currency_mismatch")
        );
    }

    #[test]
    fn checked_arithmetic_rejects_overflow() {
        assert_eq!(usd(i64::MAX).checked_add(usd(1)), Err(MoneyError::Overflow));
        assert_eq!(
            usd(i64::MIN).checked_add(usd(-1)),
            Err(MoneyError::Overflow)
        );
        assert_eq!(usd(i64::MIN).checked_sub(usd(1)), Err(MoneyError::Overflow));
        assert_eq!(usd(0).checked_sub(usd(i64::MIN)), Err(MoneyError::Overflow));
        assert_eq!(usd(i64::MIN).checked_neg(), Err(MoneyError::Overflow));
        assert_eq!(usd(i64::MAX).checked_neg(), Ok(usd(-i64::MAX)));
    }

    #[test]
    fn parse_and_format() {
        assert_eq!(Money::parse("12.5", Currency::USD), Ok(usd(1250)));
        assert_eq!(
            Money::parse("15000", Currency::KRW),
            Ok(Money::from_minor(15000, Currency::KRW))
        );
        assert!(Money::parse("-1", Currency::USD).is_err());
        assert_eq!(usd(1250).to_decimal_string(), "12.50");
        assert_eq!(usd(1250).to_string(), "12.50 USD");
        assert_eq!(
            Money::from_minor(-3000, Currency::BHD).to_string(),
            "-3.000 BHD"
        );
        assert_eq!(
            Money::from_minor(15000, Currency::KRW).to_string(),
            "15000 KRW"
        );
    }
}
