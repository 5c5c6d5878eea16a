//! What a transfer carries besides its accounts: the amount and the memo printed on statements.

use std::fmt;

use money::{Currency, Money};

use crate::error::InvalidValue;

/// The largest amount one transfer may move: 12 digits of won, the width of `tran_amt` in the
/// open-banking API.
pub const TRANSFER_AMOUNT_WON_MAX: i64 = 999_999_999_999;

/// A positive amount of Korean won to move. Banks move KRW only, and a zero or negative transfer
/// has no meaning: the direction is the operation (collect or payout), never the sign.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct TransferAmount(i64);

impl TransferAmount {
    /// Wraps a count of won between 1 and [`TRANSFER_AMOUNT_WON_MAX`].
    pub fn new(won: i64) -> Result<TransferAmount, InvalidValue> {
        if !(1..=TRANSFER_AMOUNT_WON_MAX).contains(&won) {
            return Err(InvalidValue::new(
                "amount",
                "must be between 1 and 999999999999 won",
            ));
        }
        Ok(TransferAmount(won))
    }

    /// Takes a KRW amount from the ledger's vocabulary.
    pub fn from_money(amount: Money) -> Result<TransferAmount, InvalidValue> {
        if amount.currency() != Currency::KRW {
            return Err(InvalidValue::new("amount", "must be in KRW"));
        }
        TransferAmount::new(amount.minor())
    }

    /// Parses the wire form: decimal digits without sign, separators or leading zeros.
    pub fn parse(value: &str) -> Result<TransferAmount, InvalidValue> {
        let won = money::parse_amount(value, Currency::KRW)
            .map_err(|_| InvalidValue::new("amount", "must be a decimal number of won"))?;
        TransferAmount::new(won)
    }

    pub fn won(self) -> i64 {
        self.0
    }

    pub fn to_money(self) -> Money {
        Money::from_minor(self.0, Currency::KRW)
    }
}

impl fmt::Display for TransferAmount {
    /// The wire form, e.g. `15000`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The longest memo, in characters. Bank books print few characters, and the open-banking
/// `print_content` fields are short.
pub const MEMO_CHARS_MAX: usize = 20;

/// The text a transfer prints on an account's statement (인자내역), e.g. `마이페이 4821` for a
/// micro-deposit whose code the member reads in their bank app. 1 to 20 characters, not blank,
/// no control characters.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Memo(String);

impl Memo {
    pub fn parse(value: &str) -> Result<Memo, InvalidValue> {
        let valid = !value.trim().is_empty()
            && value.chars().count() <= MEMO_CHARS_MAX
            && !value.chars().any(char::is_control);
        if !valid {
            return Err(InvalidValue::new(
                "memo",
                "must be 1 to 20 printable characters",
            ));
        }
        Ok(Memo(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Memo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_positive_won_within_twelve_digits() {
        assert_eq!(TransferAmount::new(1).unwrap().won(), 1);
        assert!(TransferAmount::new(0).is_err());
        assert!(TransferAmount::new(-5).is_err());
        assert!(TransferAmount::new(TRANSFER_AMOUNT_WON_MAX).is_ok());
        assert!(TransferAmount::new(TRANSFER_AMOUNT_WON_MAX + 1).is_err());
        assert_eq!(TransferAmount::parse("15000").unwrap().won(), 15000);
        for bad in ["", "0", "015000", "-1", "+1", "1.0", "1e3", "1,000"] {
            assert!(TransferAmount::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(TransferAmount::new(300).unwrap().to_string(), "300");
    }

    #[test]
    fn amounts_convert_from_and_to_krw_money() {
        let amount = TransferAmount::new(15000).unwrap();
        assert_eq!(TransferAmount::from_money(amount.to_money()), Ok(amount));
        assert!(TransferAmount::from_money(Money::from_minor(100, Currency::USD)).is_err());
    }

    #[test]
    fn memos_are_short_and_printable() {
        assert_eq!(
            Memo::parse("마이페이 4821").unwrap().as_str(),
            "마이페이 4821"
        );
        assert!(Memo::parse(&"가".repeat(20)).is_ok());
        assert!(Memo::parse(&"가".repeat(21)).is_err());
        assert!(Memo::parse("  ").is_err());
        assert!(Memo::parse("a\tb").is_err());
    }
}
