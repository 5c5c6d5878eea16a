//! ISO 4217 currencies and the number of minor-unit digits each one uses.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::MoneyError;

/// The largest minor-unit exponent any table entry may have.
///
/// Formatting and parsing compute `10^exponent` in `u64`, so the table is checked at compile time
/// against this bound to rule out overflow in those helpers.
pub(crate) const MAX_EXPONENT: u8 = 4;

/// One row of the currency table: an ISO 4217 alphabetic code and its minor-unit exponent.
struct Entry {
    code: &'static str,
    exponent: u8,
}

/// Shorthand constructor that keeps the table below readable.
const fn entry(code: &'static str, exponent: u8) -> Entry {
    Entry { code, exponent }
}

/// Every supported currency, sorted by code.
///
/// The order matters: `Currency` compares by table index, so keeping the table sorted makes that
/// ordering alphabetical, and lookups can use binary search. Both properties are enforced by the
/// compile-time check below.
static TABLE: [Entry; 39] = [
    entry("AED", 2),
    entry("AUD", 2),
    entry("BHD", 3),
    entry("BRL", 2),
    entry("CAD", 2),
    entry("CHF", 2),
    entry("CLP", 0),
    entry("CNY", 2),
    entry("CZK", 2),
    entry("DKK", 2),
    entry("EUR", 2),
    entry("GBP", 2),
    entry("HKD", 2),
    entry("HUF", 2),
    entry("IDR", 2),
    entry("ILS", 2),
    entry("INR", 2),
    entry("ISK", 0),
    entry("JOD", 3),
    entry("JPY", 0),
    entry("KRW", 0),
    entry("KWD", 3),
    entry("MXN", 2),
    entry("MYR", 2),
    entry("NOK", 2),
    entry("NZD", 2),
    entry("OMR", 3),
    entry("PHP", 2),
    entry("PLN", 2),
    entry("SAR", 2),
    entry("SEK", 2),
    entry("SGD", 2),
    entry("THB", 2),
    entry("TND", 3),
    entry("TRY", 2),
    entry("TWD", 2),
    entry("USD", 2),
    entry("VND", 0),
    entry("ZAR", 2),
];

/// Compile-time validation of the table, so a bad edit fails the build instead of a payment.
const _: () = validate_table();

/// Panics (at compile time, since it is only called from a constant) if the table is malformed.
const fn validate_table() {
    assert!(
        TABLE.len() <= u8::MAX as usize,
        "table index must fit in u8"
    );
    let mut i = 0;
    while i < TABLE.len() {
        assert!(is_iso_code(TABLE[i].code), "codes are three ASCII capitals");
        assert!(TABLE[i].exponent <= MAX_EXPONENT, "exponent too large");
        if i > 0 {
            assert!(
                code_less(TABLE[i - 1].code, TABLE[i].code),
                "table must be strictly sorted by code"
            );
        }
        i += 1;
    }
}

/// Reports whether `code` has the shape of an ISO 4217 alphabetic code.
const fn is_iso_code(code: &str) -> bool {
    let bytes = code.as_bytes();
    bytes.len() == 3
        && bytes[0].is_ascii_uppercase()
        && bytes[1].is_ascii_uppercase()
        && bytes[2].is_ascii_uppercase()
}

/// Byte-wise "less than" for two three-letter codes, usable in constant evaluation.
const fn code_less(left: &str, right: &str) -> bool {
    let (l, r) = (left.as_bytes(), right.as_bytes());
    let mut i = 0;
    while i < 3 {
        if l[i] != r[i] {
            return l[i] < r[i];
        }
        i += 1;
    }
    false
}

/// Byte-wise equality for two three-letter codes, usable in constant evaluation.
const fn code_eq(left: &str, right: &str) -> bool {
    !code_less(left, right) && !code_less(right, left)
}

/// Finds `code` in the table at compile time; a missing code aborts the build.
const fn const_lookup(code: &str) -> Currency {
    let mut i = 0;
    while i < TABLE.len() {
        if code_eq(TABLE[i].code, code) {
            // Lossless: `validate_table` guarantees every index fits in `u8`.
            return Currency { index: i as u8 };
        }
        i += 1;
    }
    panic!("currency constant is missing from the table");
}

/// An ISO 4217 currency together with its minor-unit exponent.
///
/// It is a one-byte index into a static table, so it is `Copy` and cheap to pass by value. Values
/// can only be obtained from the associated constants, [`Currency::parse`] or [`Currency::all`],
/// which means every `Currency` is known to be supported. Ordering is alphabetical by code.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    index: u8,
}

impl Currency {
    /// South Korean won; it has no minor unit.
    pub const KRW: Currency = const_lookup("KRW");
    /// United States dollar; amounts are counted in cents.
    pub const USD: Currency = const_lookup("USD");
    /// Euro; amounts are counted in cents.
    pub const EUR: Currency = const_lookup("EUR");
    /// Japanese yen; it has no minor unit.
    pub const JPY: Currency = const_lookup("JPY");
    /// Pound sterling; amounts are counted in pence.
    pub const GBP: Currency = const_lookup("GBP");
    /// Bahraini dinar; amounts are counted in fils, a thousandth of a dinar.
    pub const BHD: Currency = const_lookup("BHD");

    /// Parses an ISO 4217 code such as `"USD"`.
    ///
    /// Matching is deliberately strict: exactly three ASCII uppercase letters that appear in the
    /// table. Lowercase or padded input is rejected rather than normalised, so that a code means
    /// the same thing everywhere it is stored or compared.
    pub fn parse(code: &str) -> Result<Currency, MoneyError> {
        if !is_iso_code(code) {
            return Err(MoneyError::CurrencyUnknown);
        }
        let index = TABLE
            .binary_search_by(|entry| entry.code.cmp(code))
            .map_err(|_| MoneyError::CurrencyUnknown)?;
        u8::try_from(index)
            .map(|index| Currency { index })
            .map_err(|_| MoneyError::CurrencyUnknown)
    }

    /// Returns the three-letter ISO 4217 code, which is also the serialised form.
    pub fn code(self) -> &'static str {
        self.entry().code
    }

    /// Returns how many decimal digits separate major and minor units (2 for USD, 0 for KRW).
    pub fn exponent(self) -> u8 {
        self.entry().exponent
    }

    /// Iterates over every supported currency in alphabetical order.
    ///
    /// Property tests use this to cover the whole table, and documentation can list it.
    pub fn all() -> impl Iterator<Item = Currency> {
        (0..TABLE.len())
            .filter_map(|index| u8::try_from(index).ok().map(|index| Currency { index }))
    }

    /// Looks up this currency's table row; the index is valid by construction.
    fn entry(self) -> &'static Entry {
        &TABLE[usize::from(self.index)]
    }
}

impl fmt::Debug for Currency {
    /// Shows the code rather than the internal index, which would mean nothing to a reader.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Currency").field(&self.code()).finish()
    }
}

impl fmt::Display for Currency {
    /// Writes the ISO 4217 code, e.g. `USD`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;

    /// Same as [`Currency::parse`], so `"USD".parse::<Currency>()` is equally strict.
    fn from_str(code: &str) -> Result<Self, Self::Err> {
        Currency::parse(code)
    }
}

impl Serialize for Currency {
    /// Serialises as the bare code string so that stored data and API payloads stay readable.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    /// Deserialises from a code string using the same strict rules as [`Currency::parse`].
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(CurrencyVisitor)
    }
}

/// Serde visitor that accepts only strings and hands them to [`Currency::parse`].
struct CurrencyVisitor;

impl Visitor<'_> for CurrencyVisitor {
    type Value = Currency;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a three-letter ISO 4217 currency code")
    }

    /// Prefixes the stable error code so callers can map the failure to `currency_unknown`.
    fn visit_str<E: de::Error>(self, code: &str) -> Result<Currency, E> {
        Currency::parse(code).map_err(|err| E::custom(format_args!("{}: {}", err.code(), err)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_exponents() {
        assert_eq!(Currency::KRW.exponent(), 0);
        assert_eq!(Currency::USD.exponent(), 2);
        assert_eq!(Currency::EUR.exponent(), 2);
        assert_eq!(Currency::JPY.exponent(), 0);
        assert_eq!(Currency::GBP.exponent(), 2);
        assert_eq!(Currency::BHD.exponent(), 3);
    }

    #[test]
    fn full_table_matches_iso_4217() {
        let expected = [
            ("CNY", 2),
            ("CHF", 2),
            ("CAD", 2),
            ("AUD", 2),
            ("HKD", 2),
            ("SGD", 2),
            ("KWD", 3),
            ("JOD", 3),
            ("OMR", 3),
            ("TND", 3),
            ("VND", 0),
            ("CLP", 0),
            ("ISK", 0),
            ("TWD", 2),
            ("THB", 2),
            ("INR", 2),
            ("IDR", 2),
            ("PHP", 2),
            ("MYR", 2),
            ("NZD", 2),
            ("SEK", 2),
            ("NOK", 2),
            ("DKK", 2),
            ("PLN", 2),
            ("CZK", 2),
            ("HUF", 2),
            ("MXN", 2),
            ("BRL", 2),
            ("ZAR", 2),
            ("AED", 2),
            ("SAR", 2),
            ("TRY", 2),
            ("ILS", 2),
        ];
        for (code, exponent) in expected {
            let currency = Currency::parse(code).expect(code);
            assert_eq!(currency.code(), code);
            assert_eq!(currency.exponent(), exponent, "{code}");
        }
    }

    #[test]
    fn constants_have_their_codes() {
        assert_eq!(Currency::KRW.code(), "KRW");
        assert_eq!(Currency::USD.code(), "USD");
        assert_eq!(Currency::EUR.code(), "EUR");
        assert_eq!(Currency::JPY.code(), "JPY");
        assert_eq!(Currency::GBP.code(), "GBP");
        assert_eq!(Currency::BHD.code(), "BHD");
    }

    #[test]
    fn parse_round_trips_every_code() {
        let all: Vec<Currency> = Currency::all().collect();
        assert_eq!(all.len(), TABLE.len());
        for currency in all {
            assert_eq!(Currency::parse(currency.code()), Ok(currency));
        }
    }

    #[test]
    fn parse_is_strict() {
        for code in [
            "",
            "usd",
            "Usd",
            "US",
            "USDD",
            " USD",
            "USD ",
            "XXX",
            "ＵＳＤ",
            "U$D",
        ] {
            assert_eq!(
                Currency::parse(code),
                Err(MoneyError::CurrencyUnknown),
                "{code:?}"
            );
        }
    }

    #[test]
    fn ordering_is_alphabetical() {
        assert!(Currency::EUR < Currency::USD);
        let codes: Vec<&str> = Currency::all().map(Currency::code).collect();
        let mut sorted = codes.clone();
        sorted.sort_unstable();
        assert_eq!(codes, sorted);
    }

    #[test]
    fn display_debug_and_from_str() {
        assert_eq!(Currency::USD.to_string(), "USD");
        assert_eq!(format!("{:?}", Currency::USD), "Currency(\"USD\")");
        assert_eq!("JPY".parse::<Currency>(), Ok(Currency::JPY));
        assert_eq!("jpy".parse::<Currency>(), Err(MoneyError::CurrencyUnknown));
    }
}
