//! The PSP vocabulary as parsed newtypes: each is checked once, where it enters, against the
//! limits of the Toss Payments API, so that a request the PSP would refuse for its shape is
//! refused here first, with nothing sent.

use std::fmt;

/// The largest amount one card charge may carry, in won (the card API's own ceiling is far
/// above any single retail payment; this bounds arithmetic, not business).
pub const CARD_AMOUNT_WON_MAX: i64 = 1_000_000_000;

/// A value did not have the shape the PSP API requires.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct InvalidValue {
    pub field: &'static str,
    pub reason: &'static str,
}

impl InvalidValue {
    fn new(field: &'static str, reason: &'static str) -> InvalidValue {
        InvalidValue { field, reason }
    }
}

/// Checks a length in characters and an allowed character set.
fn check(
    value: &str,
    field: &'static str,
    len: std::ops::RangeInclusive<usize>,
    allowed: impl Fn(char) -> bool,
    reason: &'static str,
) -> Result<(), InvalidValue> {
    let count = value.chars().count();
    if !len.contains(&count) || !value.chars().all(allowed) {
        return Err(InvalidValue::new(field, reason));
    }
    Ok(())
}

fn key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '=' | '.' | '@')
}

macro_rules! text_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
    };
}

/// A registered card (Toss: `billingKey`): a token the PSP issued for a card, never the card
/// number. It lets whoever holds it charge the card, so `Debug` shows only its last 4
/// characters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BillingKey(String);

impl BillingKey {
    /// 1 to 200 characters of letters, digits and `- _ = . @`.
    pub fn parse(value: &str) -> Result<BillingKey, InvalidValue> {
        check(
            value,
            "card_token",
            1..=200,
            key_char,
            "must be 1 to 200 letters, digits or - _ = . @",
        )?;
        Ok(BillingKey(value.to_owned()))
    }

    /// The token itself, for a request to the PSP.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The last 4 characters, for display and logs.
    pub fn masked(&self) -> String {
        let tail: String = self
            .0
            .chars()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("***{tail}")
    }
}

impl fmt::Debug for BillingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BillingKey({})", self.masked())
    }
}

text_newtype!(
    /// The customer a billing key belongs to (Toss: `customerKey`).
    CustomerKey
);

impl CustomerKey {
    /// 2 to 300 characters of letters, digits and `- _ = . @`.
    pub fn parse(value: &str) -> Result<CustomerKey, InvalidValue> {
        check(
            value,
            "customer_key",
            2..=300,
            key_char,
            "must be 2 to 300 letters, digits or - _ = . @",
        )?;
        Ok(CustomerKey(value.to_owned()))
    }
}

text_newtype!(
    /// Our id of a payment order at the PSP (Toss: `orderId`), unique per charge.
    PspOrderId
);

impl PspOrderId {
    /// 6 to 64 characters of letters, digits, `-` and `_`, as Toss requires.
    pub fn parse(value: &str) -> Result<PspOrderId, InvalidValue> {
        check(
            value,
            "order_id",
            6..=64,
            |c| c.is_ascii_alphanumeric() || c == '-' || c == '_',
            "must be 6 to 64 letters, digits, - or _",
        )?;
        Ok(PspOrderId(value.to_owned()))
    }
}

text_newtype!(
    /// The PSP's id of a payment (Toss: `paymentKey`).
    PaymentKey
);

impl PaymentKey {
    /// 1 to 200 characters of letters, digits and `- _ = . @`.
    pub fn parse(value: &str) -> Result<PaymentKey, InvalidValue> {
        check(
            value,
            "payment_key",
            1..=200,
            key_char,
            "must be 1 to 200 letters, digits or - _ = . @",
        )?;
        Ok(PaymentKey(value.to_owned()))
    }
}

text_newtype!(
    /// Our id of a cancellation, sent as its `Idempotency-Key`.
    CancelId
);

impl CancelId {
    /// 1 to 300 characters of letters, digits and `- _ = . @` (Toss accepts up to 300).
    pub fn parse(value: &str) -> Result<CancelId, InvalidValue> {
        check(
            value,
            "cancel_id",
            1..=300,
            key_char,
            "must be 1 to 300 letters, digits or - _ = . @",
        )?;
        Ok(CancelId(value.to_owned()))
    }
}

text_newtype!(
    /// What the cardholder sees on their statement (Toss: `orderName`).
    OrderName
);

impl OrderName {
    /// 1 to 100 characters, no control characters.
    pub fn parse(value: &str) -> Result<OrderName, InvalidValue> {
        check(
            value,
            "order_name",
            1..=100,
            |c| !c.is_control(),
            "must be 1 to 100 characters without control characters",
        )?;
        Ok(OrderName(value.to_owned()))
    }
}

/// An amount of a card charge or cancellation in won: positive and bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CardAmount(i64);

impl CardAmount {
    pub fn new(won: i64) -> Result<CardAmount, InvalidValue> {
        if !(1..=CARD_AMOUNT_WON_MAX).contains(&won) {
            return Err(InvalidValue::new(
                "amount",
                "must be 1 to 1,000,000,000 won",
            ));
        }
        Ok(CardAmount(won))
    }

    pub fn won(self) -> i64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billing_keys_are_masked_in_debug() {
        let key = BillingKey::parse("bk_test_ok_12345678").unwrap();
        assert_eq!(format!("{key:?}"), "BillingKey(***5678)");
        assert_eq!(key.expose(), "bk_test_ok_12345678");
        assert!(BillingKey::parse("").is_err());
        assert!(BillingKey::parse("has space").is_err());
        assert!(BillingKey::parse(&"k".repeat(201)).is_err());
    }

    #[test]
    fn order_ids_follow_the_psp_rules() {
        assert!(PspOrderId::parse("po_01HZX").is_ok());
        assert!(
            PspOrderId::parse("short").is_err(),
            "fewer than 6 characters"
        );
        assert!(
            PspOrderId::parse("po.01HZX").is_err(),
            "dots are not allowed"
        );
        assert!(PspOrderId::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn amounts_are_positive_and_bounded() {
        assert!(CardAmount::new(0).is_err());
        assert!(CardAmount::new(-1).is_err());
        assert_eq!(CardAmount::new(15_000).unwrap().won(), 15_000);
        assert!(CardAmount::new(CARD_AMOUNT_WON_MAX + 1).is_err());
    }

    #[test]
    fn names_refuse_control_characters() {
        assert!(OrderName::parse("티셔츠 외 2건").is_ok());
        assert!(OrderName::parse("line\nbreak").is_err());
        assert!(OrderName::parse("").is_err());
    }
}
