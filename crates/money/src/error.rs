//! The single error type shared by every fallible operation in this crate.

/// Everything that can go wrong when parsing, combining or constructing amounts.
///
/// The variants carry only `&'static str` data so that the error is cheap to clone and can never
/// leak caller-supplied input (such as an attacker-controlled amount string) into logs
/// or API responses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The amount string does not follow the strict decimal grammar for its currency.
    #[error("amount is not a valid decimal string for {currency}: {reason}")]
    AmountInvalid {
        /// The ISO 4217 code of the currency the amount was parsed for.
        currency: &'static str,
        /// A short, fixed description of the first rule the input broke.
        reason: &'static str,
    },
    /// The currency code is not exactly three uppercase ASCII letters from the supported table.
    #[error("unknown currency code")]
    CurrencyUnknown,
    /// Two amounts of different currencies were combined, which has no meaning without an
    /// exchange rate.
    #[error("currencies differ: {left} and {right}")]
    CurrencyMismatch {
        /// The currency of the left-hand operand.
        left: &'static str,
        /// The currency of the right-hand operand.
        right: &'static str,
    },
    /// The result does not fit in a signed 64-bit count of minor units.
    #[error("amount out of range")]
    Overflow,
}

impl MoneyError {
    /// Returns a stable, machine-readable code for this error.
    ///
    /// API clients branch on these strings, so they must never change even if the human-readable
    /// messages are reworded.
    pub fn code(&self) -> &'static str {
        match self {
            MoneyError::AmountInvalid { .. } => "amount_invalid",
            MoneyError::CurrencyUnknown => "currency_unknown",
            MoneyError::CurrencyMismatch { .. } => "currency_mismatch",
            MoneyError::Overflow => "amount_out_of_range",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        let invalid = MoneyError::AmountInvalid {
            currency: "USD",
            reason: "empty",
        };
        let mismatch = MoneyError::CurrencyMismatch {
            left: "USD",
            right: "EUR",
        };
        assert_eq!(invalid.code(), "amount_invalid");
        assert_eq!(MoneyError::CurrencyUnknown.code(), "currency_unknown");
        assert_eq!(mismatch.code(), "currency_mismatch");
        assert_eq!(MoneyError::Overflow.code(), "amount_out_of_range");
    }

    #[test]
    fn messages_name_the_currencies_involved() {
        let invalid = MoneyError::AmountInvalid {
            currency: "USD",
            reason: "empty",
        };
        let mismatch = MoneyError::CurrencyMismatch {
            left: "USD",
            right: "EUR",
        };
        assert_eq!(
            invalid.to_string(),
            "amount is not a valid decimal string for USD: empty"
        );
        assert_eq!(mismatch.to_string(), "currencies differ: USD and EUR");
        assert_eq!(MoneyError::Overflow.to_string(), "amount out of range");
    }
}
